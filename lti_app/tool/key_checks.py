"""Whether a process can sign with its key settings, checked as it starts (servers, score
workers, roster syncs)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from lti_app.tool.keys import SECRET_SETTING, KeyRing, ToolKeyError, secret_opens_keys

if TYPE_CHECKING:
    from lti_app.db import Database
    from lti_app.settings import Settings

LOG = logging.getLogger(__name__)

WRONG_SECRET = (
    f"setting '{SECRET_SETTING}' (or LTI_APP_SECRET_KEY when it is not set) opens none of the "
    "tool keys in the database: give the servers the secret the keys were made with, or, if "
    "the secret was changed on purpose, run `lti-app keys rotate --new-secret` first"
)


def start_up_keyring(settings: Settings, database: Database) -> KeyRing:
    """The key ring of a process that signs (server, score worker, roster sync), after the
    checks it makes as it starts: its key files can be used, or its secret opens the keys in
    the database. Without them it started, then failed every signature (deep linking, every
    service token) until someone read the logs.

    A database that cannot be read is not checked: it may be starting too (/healthz says 503
    until it answers), and nothing is signed before it answers anyway.

    :raises ToolKeyError: naming the setting to fix.
    """
    ring = KeyRing.from_settings(settings)
    if settings.tool_key_file:
        return ring
    try:
        with database.session_factory() as session:
            opens = secret_opens_keys(session, settings.effective_key_secret)
    except SQLAlchemyError as err:
        LOG.warning(
            "tool keys not checked at start-up: the database could not be read (%s)",
            type(err).__name__,
        )
        return ring
    if not opens:
        raise ToolKeyError(WRONG_SECRET, setting=SECRET_SETTING)
    return ring
