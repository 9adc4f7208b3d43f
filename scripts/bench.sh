#!/usr/bin/env bash
# The Foundation benchmark: loads 1,000,000 members into SQLite and into PostgreSQL with
# the store's bulk API, measures searches and subtree counts through the real `kite serve`,
# the product's storage queries next to classic baselines on the same data, and the
# server's memory; writes the figures into BENCHMARKS.md (between the kite-bench markers,
# so the notes around them stay). Not part of the test suite; takes several minutes.
#
#   ./scripts/bench.sh                      # the full run (1M members per backend)
#   KITE_BENCH_OUT=/tmp/b.md ./scripts/bench.sh --members 20000   # a quick trial elsewhere
#
# Extra arguments go to kite-bench (see `target/release/kite-bench --help`); the PostgreSQL
# server is KITE_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test), where the
# bench creates and drops its own database `kite_bench`.
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
echo "== running kite-bench $*" >&2
KITE_BENCH_COMMAND="./scripts/bench.sh${*:+ $*}" \
  ./target/release/kite-bench "$@" >"$report"

begin='<!-- kite-bench:begin -->'
end='<!-- kite-bench:end -->'
if [ -f "$out" ] && grep -qF "$begin" "$out" && grep -qF "$end" "$out"; then
  awk -v gen="$report" -v b="$begin" -v e="$end" '
    $0 == b { print; while ((getline line < gen) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$out" >"$out.new"
  mv "$out.new" "$out"
else
  { echo "# Benchmarks"; echo; echo "$begin"; cat "$report"; echo "$end"; } >"$out"
fi
echo "== wrote $out" >&2
