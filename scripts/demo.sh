#!/usr/bin/env bash
# Install Pathways and run it with SQLite and the demo LMS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export LTI_APP_ENV="${LTI_APP_ENV:-development}"
export LTI_APP_SECRET_KEY="${LTI_APP_SECRET_KEY:-demo-only-secret-$(hostname)}"
exec .venv/bin/lti-app demo "$@"
