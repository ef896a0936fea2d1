"""gunicorn settings for `lti-app serve` and `gunicorn -c config/gunicorn.conf.py 'lti_app:create_app()'`."""

import os

bind = os.environ.get("LTI_APP_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("LTI_APP_WORKERS", "2"))
threads = int(os.environ.get("LTI_APP_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
accesslog = "-"
# The path without its query: launch tokens and registration tokens travel in query strings.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(D)sus'  # noqa: S105 - not a secret
forwarded_allow_ips = os.environ.get("LTI_APP_FORWARDED_ALLOW_IPS", "127.0.0.1")
