"""A health check for load balancers and orchestrators: can this worker serve launches?"""

from __future__ import annotations

import logging
import threading

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from lti_app import migrate
from lti_app.tool.models import Platform
from lti_app.web import database

LOG = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

_state = threading.Lock()


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers with a schema this version can use, else 503; never
    says more (no URL, no error text)."""
    extensions = current_app.extensions
    try:
        with database().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            # Once seen in place, the schema stays: later checks ask only that the database
            # answers (a check every few seconds must stay cheap).
            schema_ready = extensions.get("lti_app.health.schema_ready") or _schema_ready(conn)
    except SQLAlchemyError:
        _report_outage(extensions, "the database did not answer", with_error=True)
        body, status = {"status": "unavailable", "database": "unreachable"}, 503
    else:
        if schema_ready:
            extensions["lti_app.health.schema_ready"] = True
            _report_recovery(extensions)
            body, status = {"status": "ok", "database": "ok"}, 200
        else:
            _report_outage(extensions, "the database has no Pathways tables or an older schema")
            body, status = {"status": "unavailable", "database": "schema behind"}, 503
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, status


def _schema_ready(conn: Connection) -> bool:
    """Whether the schema is the one this version needs, or a newer one (a rolling upgrade:
    the migrations ran and this worker waits to be replaced, its pages still working).

    A server started by plain gunicorn on a database `lti-app db upgrade` never reached
    answered every launch with a 500 while this check said 200 (`lti-app serve` refuses to
    start on it). A database made without Alembic (the tests' create_all) counts by its
    tables."""
    tables = inspect(conn)
    if not tables.has_table("alembic_version"):
        return tables.has_table(Platform.__tablename__)
    current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    heads = migrate.head_revision()
    if current is None:
        return False
    if current == heads or not migrate.is_known(current):
        return True
    return not migrate.is_older(current, heads)


def _report_outage(extensions: dict[str, object], what: str, *, with_error: bool = False) -> None:
    """Log the start of an outage once: a load balancer asking every few seconds would
    otherwise bury the logs under one traceback per check."""
    with _state:
        already = extensions.get("lti_app.health.failing") == what
        extensions["lti_app.health.failing"] = what
    if not already:
        LOG.warning("health check: %s; answering 503 until it does", what, exc_info=with_error)


def _report_recovery(extensions: dict[str, object]) -> None:
    with _state:
        was = extensions.pop("lti_app.health.failing", None)
    if was is not None:
        LOG.warning("health check: all is well again (%s before)", was)
