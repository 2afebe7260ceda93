#!/usr/bin/env bash
# tests/bench_trace_test.sh: FORKLINE_TRACE=F on forkline-bench. Each
# configuration that runs forkline must leave its own trace (F with
# ".IMPL.wN" before ".json"), written by the forked child that ran it, and
# the table's notes must name it; a configuration that does not run forkline
# leaves none. Nothing here looks at a timing.
#
#   bash tests/bench_trace_test.sh PATH_TO_forkline-bench
#   (exit 77: skipped, no python3 to read the JSON)
set -euo pipefail

bench=${1:?usage: bench_trace_test.sh PATH_TO_forkline-bench}
if ! command -v python3 >/dev/null 2>&1; then
  echo "bench_trace_test: python3 is not installed; skipping"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "bench_trace_test: FAIL: $*" >&2
  exit 1
}

# A stale file of an earlier run must not pass for this run's.
echo 'stale' > "$tmp/t.forkline.w2.json"
FORKLINE_TRACE="$tmp/t.json" "$bench" fib --n 16 --impl forkline,serial --workers 1,2 --reps 2 \
  >"$tmp/table" 2>"$tmp/err" || fail "forkline-bench failed: $(cat "$tmp/err")"

for w in 1 2; do
  f="$tmp/t.forkline.w$w.json"
  [ -s "$f" ] || fail "no trace for forkline w=$w ($f): $(ls "$tmp")"
  grep -qF "$f" "$tmp/table" || fail "the table does not name $f: $(cat "$tmp/table")"
  python3 - "$f" "$w" <<'PY' || fail "$f is not a trace of forkline at w=$2"
import json, sys
path, workers = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    doc = json.load(f)
events = doc["traceEvents"]
names = {e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
want = {"fl-w%d" % i for i in range(workers)}
if not want <= names:
    sys.exit("%s: worker threads %s missing from %s" % (path, sorted(want - names), sorted(names)))
if doc["otherData"]["recorded_events"] <= 0:
    sys.exit("%s: no events" % path)
PY
done
[ ! -e "$tmp/t.serial.w1.json" ] || fail "the serial variant, which does not run forkline, left a trace"
[ ! -e "$tmp/t.json" ] || fail "F itself was written: $(head -c 200 "$tmp/t.json")"
echo "bench_trace_test: ok"
