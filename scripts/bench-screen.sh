#!/usr/bin/env bash
# The screening benchmark against Splink (issue 5, "Accuracy and speed"): per roster size,
# the generator writes a registry, a roster and the truth once (same seed), then Kite's
# engine and Splink (DuckDB backend, in a venv under target/) run on the same files one
# after the other; wall time and peak memory of each come from /usr/bin/time, accuracy
# of both from one scorer (`screen_bench score`: the best candidate of each roster row
# against the truth, per band). Writes the figures into BENCHMARKS.md (between the
# kite-bench-screen markers, so the notes around them stay). Not part of the test suite;
# needs PyPI the first time (pip installs the pinned Splink into target/splink-venv).
#
#   ./scripts/bench-screen.sh                       # 100k and 1M rows against 1M members
#   KITE_BENCH_OUT=/tmp/s.md ./scripts/bench-screen.sh --sizes 100000 --members 100000
#   ./scripts/bench-screen.sh --sizes 10000000 --splink-max 1000000   # 10M rows, Kite only
#
# Options: --sizes "N N …" (roster rows; commas or spaces), --members N, --corruption
# none|standard|heavy, --seed N, --threads N (Kite), --splink-max N (largest roster Splink
# is run on; default 1000000: at 10M it does not fit this machine, see BENCHMARKS.md),
# --u-max-pairs F (Splink's random pairs for u, default 1e7), --splink-timeout S (stop
# Splink after S seconds and report how far it got; default none), --keep (keep the
# generated files in target/bench-screen).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${KITE_BENCH_OUT:-BENCHMARKS.md}"
command_line="./scripts/bench-screen.sh"
if [ $# -gt 0 ]; then command_line+="$(printf ' %q' "$@")"; fi
sizes="100000 1000000"
members=1000000
corruption=standard
seed=2024
threads=2
splink_max=1000000
u_max_pairs=1e7
splink_timeout=0
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes="${2//,/ }"; shift 2 ;;
    --members) members="$2"; shift 2 ;;
    --corruption) corruption="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --splink-max) splink_max="$2"; shift 2 ;;
    --u-max-pairs) u_max_pairs="$2"; shift 2 ;;
    --splink-timeout) splink_timeout="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

SPLINK_VERSION=5.0.0
DUCKDB_VERSION=2.0.0

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
echo "== building screen_bench (release)" >&2
cargo build --release -p kite-screen --example screen_bench
bench="$CARGO_TARGET_DIR/release/examples/screen_bench"

venv="$CARGO_TARGET_DIR/splink-venv"
if ! "$venv/bin/python" -c "import splink, duckdb, sys; sys.exit(splink.__version__ != '$SPLINK_VERSION' or duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
  echo "== installing splink==$SPLINK_VERSION duckdb==$DUCKDB_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "splink==$SPLINK_VERSION" "duckdb==$DUCKDB_VERSION"
fi

data="$CARGO_TARGET_DIR/bench-screen"
mkdir -p "$data"
rm -f "$data/splink_settings.md"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
thousands() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
mib() { awk '{ printf "%.0f", $1 / 1024 }'; }
field() { grep "^$1 " "$2" | head -n1 | cut -d' ' -f"$3"; }

{
  echo "### Run"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S +0000')"
  echo "- Command: \`$command_line\` (sizes $sizes; $members members; corruption $corruption; seed $seed; Kite on $threads threads)"
  echo "- Machine: $(nproc) CPUs (\`nproc\`), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "- Toolchain: $(rustc --version), release profile; Python $("$venv/bin/python" -c 'import sys; print(sys.version.split()[0])'), Splink $SPLINK_VERSION, DuckDB $DUCKDB_VERSION"
  echo "- Source: git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates/screen scripts || echo ' with uncommitted changes')"
  echo "- Load average (1, 5, 15 min) at start: $(load) (the machine may be shared with other work; each run's load is in its table)"
  echo
} >>"$report"

for rows in $sizes; do
  dir="$data/m${members}-r${rows}-${corruption}-s${seed}"
  mkdir -p "$dir"
  echo "== generating $members members, $rows roster rows into $dir" >&2
  splink_input=()
  [ "$rows" -le "$splink_max" ] && splink_input=(--splink)
  "$bench" gen --dir "$dir" --members "$members" --rows "$rows" --corruption "$corruption" --seed "$seed" "${splink_input[@]}" >"$dir/gen.txt"

  echo "== Kite on $rows rows" >&2
  kite_load_before="$(load)"
  /usr/bin/time -f '%e %M' -o "$dir/kite.time" \
    "$bench" run --dir "$dir" --threads "$threads" --out "$dir/kite_matches.csv" --weights >"$dir/kite.txt"
  kite_load_after="$(load)"
  "$bench" score --dir "$dir" --matches "$dir/kite_matches.csv" >"$dir/kite_score.txt"
  echo "== ID path and plain hash join on $rows rows" >&2
  "$bench" idpath --dir "$dir" >"$dir/idpath.txt"

  splink_ran=0
  splink_status=0
  if [ "$rows" -le "$splink_max" ]; then
    echo "== Splink on $rows rows" >&2
    splink_load_before="$(load)"
    splink_status=0
    /usr/bin/time -f '%e %M' -o "$dir/splink.time" timeout "$splink_timeout" \
      "$venv/bin/python" scripts/splink_baseline.py --dir "$dir" --out "$dir/splink_matches.csv" \
      --settings-out "$dir/splink_settings.md" --log "$dir/splink.log" --u-max-pairs "$u_max_pairs" \
      >"$dir/splink.txt" 2>"$dir/splink.err" || splink_status=$?
    if [ "$splink_status" = 0 ]; then
      splink_ran=1
      "$bench" score --dir "$dir" --matches "$dir/splink_matches.csv" >"$dir/splink_score.txt"
    else
      echo "Splink stopped on $rows rows with status $splink_status (see $dir/splink.log, $dir/splink.err)" >&2
    fi
    splink_load_after="$(load)"
  fi

  k_wall=$(cut -d' ' -f1 "$dir/kite.time" | tail -n1)
  k_rss=$(cut -d' ' -f2 "$dir/kite.time" | tail -n1 | mib)
  k_e2e=$(field ENGINE_SECONDS "$dir/kite.txt" 2)
  {
    echo "### $(thousands "$rows") roster rows against $(thousands "$members") members"
    echo
    echo "Files: $(du -h "$dir/members.csv" | cut -f1) registry, $(du -h "$dir/roster.csv" | cut -f1) roster ($(head -n1 "$dir/gen.txt" | sed 's/ into .*//'))."
    echo
    if [ "$splink_ran" = 1 ]; then
      s_wall=$(cut -d' ' -f1 "$dir/splink.time" | tail -n1)
      s_rss=$(cut -d' ' -f2 "$dir/splink.time" | tail -n1 | mib)
      echo "| | Kite | Splink |"
      echo "|---|---:|---:|"
      for band in match review best; do
        label=$band
        [ "$band" = best ] && label="best match (match + review)"
        echo "| $label: rows proposed / right / wrong | $(grep "^SCORE $band " "$dir/kite_score.txt" | cut -d' ' -f3-5 | sed 's# # / #g') | $(grep "^SCORE $band " "$dir/splink_score.txt" | cut -d' ' -f3-5 | sed 's# # / #g') |"
        echo "| $label: precision / recall / F1 | $(grep "^SCORE $band " "$dir/kite_score.txt" | cut -d' ' -f6-8 | sed 's# # / #g') | $(grep "^SCORE $band " "$dir/splink_score.txt" | cut -d' ' -f6-8 | sed 's# # / #g') |"
      done
      echo "| training | $(grep -m1 '^| train' "$dir/kite.txt" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }') s | $(field SPLINK_SECONDS "$dir/splink.txt" 3) s |"
      echo "| scoring (Kite: match; Splink: predict) | $(grep -m1 '^| match (' "$dir/kite.txt" | awk -F'|' '{ gsub(/ /, "", $3); print $3 }') s | $(field SPLINK_SECONDS "$dir/splink.txt" 4) s |"
      echo "| end to end, wall (\`/usr/bin/time\`, process start to exit) | **$k_wall s** | **$s_wall s** |"
      echo "| peak memory (max RSS) | **$k_rss MiB** | **$s_rss MiB** |"
      echo "| load average before / after | $kite_load_before / $kite_load_after | $splink_load_before / $splink_load_after |"
      echo
      echo "Splink / Kite: time $(awk -v a="$s_wall" -v b="$k_wall" 'BEGIN { printf "%.1f", a / b }')×, peak memory $(awk -v a="$s_rss" -v b="$k_rss" 'BEGIN { printf "%.1f", a / b }')×. Splink reads the fields as Kite's normalizer wrote them (\`members_norm.csv\`, \`roster_norm.csv\`: simplified name, pinyin, the 18-character ID, the birth date split by precision, gender, phone, address), made before the run and not counted in its time; Kite's time includes reading and normalizing the raw files."
    else
      echo "| | Kite |"
      echo "|---|---:|"
      for band in match review best; do
        label=$band
        [ "$band" = best ] && label="best match (match + review)"
        echo "| $label: rows proposed / right / wrong | $(grep "^SCORE $band " "$dir/kite_score.txt" | cut -d' ' -f3-5 | sed 's# # / #g') |"
        echo "| $label: precision / recall / F1 | $(grep "^SCORE $band " "$dir/kite_score.txt" | cut -d' ' -f6-8 | sed 's# # / #g') |"
      done
      echo "| end to end, wall (\`/usr/bin/time\`) | **$k_wall s** |"
      echo "| peak memory (max RSS) | **$k_rss MiB** |"
      echo "| load average before / after | $kite_load_before / $kite_load_after |"
      echo
      if [ "$rows" -gt "$splink_max" ]; then
        echo "Splink not run at this size (--splink-max $splink_max)."
      elif [ "$splink_status" = 124 ]; then
        echo "Splink did not finish within --splink-timeout $splink_timeout s and was stopped: $(cut -d' ' -f1 "$dir/splink.time" | tail -n1) s, peak memory (max RSS) $(cut -d' ' -f2 "$dir/splink.time" | tail -n1 | mib) MiB until then, load average before / after $splink_load_before / $splink_load_after. Last lines of its log:"
        echo; echo '```text'; grep -v '^ *$' "$dir/splink.log" | tail -n 4 | cut -c1-200; echo '```'
      else
        echo "Splink stopped with status $splink_status after $(cut -d' ' -f1 "$dir/splink.time" | tail -n1) s, peak memory (max RSS) $(cut -d' ' -f2 "$dir/splink.time" | tail -n1 | mib) MiB, load average before / after $splink_load_before / $splink_load_after. Last lines of its output:"
        echo; echo '```text'; { grep -v '^ *$' "$dir/splink.log"; cat "$dir/splink.err"; } | tail -n 6 | cut -c1-200; echo '```'
      fi
    fi
    echo
    echo "Exact-ID path: $(grep -m1 '^plain hash join' "$dir/idpath.txt")."
    echo
    echo "Kite's stages (its own clock, from the start of \`run\`: the registry is read and indexed on one thread while another reads the roster in chunks of 250,000 rows; training on the first 50,000 rows, then each chunk is matched on $threads threads while the next is read):"
    echo
    sed -n '/^| stage/,/^$/p' "$dir/kite.txt"
    grep -E '^(roster rows|training:|registry index)' "$dir/kite.txt" | sed 's/^/- /'
    echo
    if [ "$splink_ran" = 1 ]; then
      echo "Splink's steps (its own clock, after the Python imports):"
      echo
      sed -n '/^| step/,/^$/p' "$dir/splink.txt"
      grep -E '^training ' "$dir/splink.txt" | sed 's/^/- /'
      echo
    fi
  } >>"$report"
  if [ "$splink_ran" = 1 ]; then cp "$dir/splink_settings.md" "$data/splink_settings.md"; fi
  if [ "$keep" = 0 ]; then rm -f "$dir"/*.csv; fi
done

if [ -f "$data/splink_settings.md" ]; then
  { echo "### Splink settings"; echo; cat "$data/splink_settings.md"; echo; } >>"$report"
fi
echo "- Load average at end: $(load)" >>"$report"

begin='<!-- kite-bench-screen:begin -->'
end='<!-- kite-bench-screen:end -->'
if [ -f "$out" ] && grep -qF "$begin" "$out" && grep -qF "$end" "$out"; then
  awk -v gen="$report" -v b="$begin" -v e="$end" '
    $0 == b { print; while ((getline line < gen) > 0) print line; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$out" >"$out.new"
  mv "$out.new" "$out"
else
  { if [ -f "$out" ]; then cat "$out"; echo; fi; echo "## Screening"; echo; echo "$begin"; cat "$report"; echo "$end"; } >"$out.new"
  mv "$out.new" "$out"
fi
echo "== wrote $out" >&2
