"""gunicorn settings for `lti-app serve` and `gunicorn -c config/gunicorn.conf.py 'lti_app:create_app()'`."""

import os

bind = os.environ.get("LTI_APP_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("LTI_APP_WORKERS", "2"))
threads = int(os.environ.get("LTI_APP_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
accesslog = "-"
forwarded_allow_ips = os.environ.get("LTI_APP_FORWARDED_ALLOW_IPS", "127.0.0.1")
