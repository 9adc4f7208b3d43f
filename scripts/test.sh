#!/usr/bin/env bash
# The whole test suite, on SQLite and PostgreSQL, from a fresh machine of this kind:
# installs what is missing (PostgreSQL, Chromium and ChromeDriver), starts PostgreSQL
# if none answers, then runs rustfmt, clippy and every test, the browser test included.
# A missing service fails the run; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

export KITE_TEST_POSTGRES_URL="${KITE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

need_apt=()
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql postgresql-client)
# The end-to-end test drives Debian's Chromium through ChromeDriver.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "== starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
# Schemas left by earlier runs' tests.
psql "$KITE_TEST_POSTGRES_URL" -qAt -c "SELECT 'DROP SCHEMA ' || nspname || ' CASCADE;' FROM pg_namespace WHERE nspname LIKE 'kite_t_%'" \
  | psql "$KITE_TEST_POSTGRES_URL" -q >/dev/null

echo "== rustfmt"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests (SQLite and PostgreSQL)"
cargo test --workspace --locked
