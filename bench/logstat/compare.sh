#!/usr/bin/env bash
# bench/logstat/compare.sh: logstat against its peers on one generated log:
# forkline's logstat, logstat-tbb (tbb::parallel_pipeline) and
# `LC_ALL=C awk '{print $1}' | sort | uniq -c`, each timed over REPS runs
# (median, min, max of the wall time), and their counts compared.
#
#   bench/logstat/compare.sh BUILD_DIR [LINES (3000000)] [WORKERS (2)] [REPS (3)]
#
# The log (scripts/gen-log, seed 1) is kept in BUILD_DIR/bench/logstat/ and
# made again only when LINES changes. It is read once before timing, so every
# program reads it from the page cache.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [LINES] [WORKERS] [REPS]" >&2
  exit 2
fi
build=$1
lines=${2:-3000000}
workers=${3:-2}
reps=${4:-3}
here=$(cd "$(dirname "$0")" && pwd)
logstat=$build/examples/logstat
logstat_tbb=$build/bench/logstat/logstat-tbb
[ -x "$logstat" ] || { echo "$logstat: not built" >&2; exit 1; }

log=$build/bench/logstat/access-$lines.log
if [ ! -s "$log" ]; then
  echo "writing $log ($lines lines)" >&2
  python3 "$here/../../scripts/gen-log" --lines "$lines" --seed 1 >"$log.tmp"
  mv "$log.tmp" "$log"
fi
cat "$log" >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# time_runs NAME COMMAND...: REPS runs, output of the last in $out/NAME.
time_runs() {
  local name=$1
  shift
  local times=()
  for _ in $(seq "$reps"); do
    local start end
    start=$(date +%s.%N)
    "$@" >"$out/$name"
    end=$(date +%s.%N)
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v name="$name" '
    { t[NR] = $1 }
    END { printf "%-22s median %.3f s  min %.3f s  max %.3f s  (%d runs)\n", name, t[int((NR + 1) / 2)], t[1], t[NR], NR }'
}

awk_sort_uniq() { LC_ALL=C awk '{ print $1 }' "$1" | LC_ALL=C sort | uniq -c; }

echo "$(wc -l <"$log") lines, $(($(stat -L -c %s "$log") >> 20)) MiB; $workers workers; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
time_runs "logstat -p $workers" "$logstat" -p "$workers" "$log"
if [ -x "$logstat_tbb" ]; then
  time_runs "logstat-tbb -p $workers" "$logstat_tbb" -p "$workers" "$log"
else
  echo "logstat-tbb: not built (oneTBB not found)"
fi
time_runs "awk|sort|uniq -c" awk_sort_uniq "$log"

# The awk counts in logstat's form and order.
LC_ALL=C awk '{ print $1 "\t" $2 }' "$out/awk|sort|uniq -c" |
  LC_ALL=C sort -t "$(printf '\t')" -k1,1nr -k2,2 >"$out/reference"
verdict=identical
cmp -s "$out/logstat -p $workers" "$out/reference" || verdict="DIFFERENT (logstat vs awk)"
if [ -x "$logstat_tbb" ] && ! cmp -s "$out/logstat-tbb -p $workers" "$out/reference"; then
  verdict="DIFFERENT (logstat-tbb vs awk)"
fi
echo "counts: $verdict ($(wc -l <"$out/reference") clients)"
[ "$verdict" = identical ]
