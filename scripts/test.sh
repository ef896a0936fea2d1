#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, then runs every test,
# on SQLite and, when it answers, on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped"
  else
    echo "warning: /usr/bin/chromium missing and not root; browser tests will be skipped"
  fi
fi

PG_URL="${LTI_APP_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
pg_ok=0
if .venv/bin/python - "$PG_URL" <<'PY' 2>/dev/null; then pg_ok=1; fi
import sys
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1], connect_args={"connect_timeout": 3})
with engine.connect() as conn:
    conn.execute(text("select 1"))
PY

.venv/bin/ruff check lti_app tests bench
.venv/bin/ruff format --check lti_app tests bench
.venv/bin/mypy

echo "== tests on SQLite"
LTI_APP_TEST_DATABASE_URL= .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

if [ "$pg_ok" = 1 ]; then
  echo "== tests on PostgreSQL ($PG_URL)"
  LTI_APP_TEST_DATABASE_URL="$PG_URL" .venv/bin/python -m pytest -q -p no:cacheprovider \
    -m "not browser" "$@"
elif [ "${LTI_APP_REQUIRE_POSTGRES:-0}" = 1 ]; then
  echo "error: PostgreSQL at $PG_URL is not reachable, and this run requires it" >&2
  exit 1
else
  echo "== SKIPPED: tests on PostgreSQL: no server answers at $PG_URL" \
       "(set LTI_APP_TEST_DATABASE_URL to run them)"
fi
