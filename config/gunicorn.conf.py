"""gunicorn settings for `lti-app serve` (and `gunicorn -c config/gunicorn.conf.py ...`)."""

import os

bind = os.environ.get("LTI_APP_BIND", "0.0.0.0:8000")


def _count(name: str, default: int) -> int:
    """A positive whole number from the environment, or a one-line error naming it."""
    raw = os.environ.get(name, str(default)).strip()
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a whole number of 1 or more, got {raw!r}")
    return int(raw)


workers = _count("LTI_APP_WORKERS", 2)
threads = _count("LTI_APP_THREADS", 4)
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
accesslog = "-"
# The path without its query: launch tokens and registration tokens travel in query strings.
# The request id (the app's response header) is the one its own log lines and error pages show.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(D)sus rid=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("LTI_APP_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# A login's own check (/lti/login/check) carries the LMS's login parameters in its address, and
# some LMSs send an lti_message_hint of a few kilobytes (a JWT): twice gunicorn's 4094 default.
limit_request_line = 8190


def post_worker_init(worker: object) -> None:
    """Move the app's start-up objects out of the collector's way (fewer long GC pauses)."""
    import gc

    gc.freeze()
