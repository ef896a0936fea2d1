"""Wrong operator secrets, kept so that guessing is throttled in every worker on every host."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk


class OperatorSignInFailure(Base):
    """One wrong admin secret, from one client address (no secret is kept)."""

    __tablename__ = "operator_sign_in_failure"

    id: Mapped[intpk]
    client_address: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[created_at]
