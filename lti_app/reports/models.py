"""The student's own reflection, which the family report quotes."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, created_at, intpk, updated_at

REFLECTION_MAX_LENGTH = 4000


class StudentReflection(Base):
    """What a student wrote about their learning, for their family report (one per course)."""

    __tablename__ = "student_reflection"
    __table_args__ = (UniqueConstraint("context_id", "person_id"),)

    id: Mapped[intpk]
    context_id: Mapped[int] = mapped_column(ForeignKey("context.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[created_at]
    updated_at: Mapped[updated_at]
