"""Logging set-up: one line per event, with the request id."""

from __future__ import annotations

import logging.config


def configure_logging(level: str) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"request_id": {"()": "lti_app.errors.RequestIdFilter"}},
            "formatters": {
                "line": {
                    "format": "%(asctime)s %(levelname)s %(name)s rid=%(request_id)s %(message)s"
                }
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "line",
                    "filters": ["request_id"],
                }
            },
            "loggers": {"lti_app": {"level": level, "handlers": ["stderr"], "propagate": False}},
        }
    )
