#!/usr/bin/env bash
# The check-in load benchmark: per backend (SQLite, then PostgreSQL), concurrent
# self-service check-ins through the real `kite serve` from a load generator in a second
# process, next to raw single-row inserts of the same rows into the same database in the
# same run, then a kill -9 of the server in the middle of a run and a check that every
# acknowledged check-in is stored exactly once. Writes the figures into BENCHMARKS.md
# (between the kite-bench-checkin markers, so the notes around them stay). Not part of
# the test suite; takes a few minutes.
#
#   ./scripts/bench-checkin.sh                                  # the full run
#   KITE_BENCH_OUT=/tmp/b.md ./scripts/bench-checkin.sh --checkins 2000 --kill-checkins 1000
#
# Extra arguments go to `kite-bench checkin` (see `target/release/kite-bench checkin --help`);
# the PostgreSQL server is KITE_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test),
# where the bench creates and drops its own database `kite_bench_checkin`.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${KITE_BENCH_OUT:-BENCHMARKS.md}"

echo "== building (release)" >&2
cargo build --release -p kite -p kite-bench

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "== starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
echo "== running kite-bench checkin $*" >&2
KITE_BENCH_COMMAND="./scripts/bench-checkin.sh${*:+ $*}" \
  ./target/release/kite-bench checkin "$@" >"$report"

begin='<!-- kite-bench-checkin:begin -->'
end='<!-- kite-bench-checkin:end -->'
if [ -f "$out" ] && grep -qF "$begin" "$out" && grep -qF "$end" "$out"; then
  awk -v gen="$report" -v b="$begin" -v e="$end" '
    $0 == b { print; while ((getline line < gen) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$out" >"$out.new"
  mv "$out.new" "$out"
else
  { [ -f "$out" ] && cat "$out" && echo; echo "## Check-in"; echo; echo "$begin"; cat "$report"; echo "$end"; } >"$out.new"
  mv "$out.new" "$out"
fi
echo "== wrote $out" >&2
