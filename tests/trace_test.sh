#!/usr/bin/env bash
# tests/trace_test.sh: FORKLINE_TRACE end to end. examples/fib.cpp (built
# here as a program linked the way users link it) with FORKLINE_TRACE set
# must leave a file python's json module reads, with one thread name per
# thread, a name fl-wN per worker, spans that nest on every thread and a
# size well under 50 MB for fib(30); a program that only uses
# default_runtime() and returns from main must leave one too (written after
# that runtime stopped); an unwritable FORKLINE_TRACE is an error that names
# the variable and the call; an empty one traces nothing.
# Nothing here looks at a timing.
#
#   bash tests/trace_test.sh PATH_TO_fib_example PATH_TO_trace_child
#   (exit 77: skipped, no python3 to read the JSON)
set -euo pipefail

fib=${1:?usage: trace_test.sh PATH_TO_fib_example PATH_TO_trace_child}
child=${2:?usage: trace_test.sh PATH_TO_fib_example PATH_TO_trace_child}
# Absolute: one check runs in another directory.
fib=$(realpath "$fib")
child=$(realpath "$child")
if ! command -v python3 >/dev/null 2>&1; then
  echo "trace_test: python3 is not installed; skipping"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

checks=0
fail() {
  echo "trace_test: FAIL: $*" >&2
  exit 1
}

# $1: trace file; $2: workers expected. Exits non-zero with a reason.
check_trace() {
  python3 - "$1" "$2" <<'PY'
import json, sys
from collections import defaultdict

path, workers = sys.argv[1], int(sys.argv[2])
with open(path, encoding="utf-8") as f:
    doc = json.load(f)
events = doc["traceEvents"]
assert doc["displayTimeUnit"] == "ns"
assert doc["otherData"]["dropped_events"] == 0, "events were dropped"

names = defaultdict(list)
spans = defaultdict(list)
for e in events:
    for key in ("name", "ph", "pid", "tid"):
        assert key in e, f"event without {key}: {e}"
    if e["ph"] == "M" and e["name"] == "thread_name":
        names[e["tid"]].append(e["args"]["name"])
    elif e["ph"] == "X":
        assert e["ts"] >= 0 and e["dur"] >= 0, f"negative time: {e}"
        # Integer ns: the file has exactly three decimals.
        begin = round(e["ts"] * 1000)
        spans[e["tid"]].append((begin, begin + round(e["dur"] * 1000)))

for tid, ns in names.items():
    assert len(ns) == 1, f"tid {tid} named {ns}"
worker_names = sorted(n[0] for n in names.values() if n[0].startswith("fl-w"))
want = sorted(f"fl-w{i}" for i in range(workers))
assert worker_names == want, f"worker names {worker_names}, want {want}"

for tid, s in spans.items():
    s.sort(key=lambda p: (p[0], -p[1]))
    stack = []
    for begin, end in s:
        while stack and stack[-1] <= begin:
            stack.pop()
        assert not stack or end <= stack[-1], f"tid {tid}: span [{begin}, {end}) overlaps its parent partly"
        stack.append(end)

tasks = sum(1 for e in events if e["ph"] == "X" and e["name"] in ("task", "injected"))
assert tasks >= 1, "no task spans"
print(f"{len(events)} events, {tasks} task spans, workers {worker_names}")
PY
}

# 1. The fib example at 2 workers, fib(30): valid, balanced, small.
out=$(FORKLINE_TRACE="$tmp/fib.json" FORKLINE_WORKERS=2 "$fib" 30) || fail "fib example failed: $out"
case "$out" in *"fib(30) = 832040"*) ;; *) fail "fib example printed: $out" ;; esac
[ -s "$tmp/fib.json" ] || fail "no trace written by the fib example"
check_trace "$tmp/fib.json" 2 || fail "fib(30) trace"
size=$(stat -c %s "$tmp/fib.json")
[ "$size" -lt $((50 * 1024 * 1024)) ] || fail "fib(30) trace is $size bytes, not under 50 MB"
echo "trace_test: fib(30) at 2 workers: $size bytes"
checks=$((checks + 1))

# 2. Only default_runtime(), left running when main returns: the file is
#    still written, after that runtime stopped, with all its workers.
out=$(FORKLINE_TRACE="$tmp/child.json" FORKLINE_WORKERS=2 "$child" 20) || fail "trace_child failed: $out"
[ "$out" = "6765" ] || fail "trace_child printed: $out"
[ -s "$tmp/child.json" ] || fail "no trace written when main returns with default_runtime() running"
check_trace "$tmp/child.json" 2 || fail "default_runtime() trace"
checks=$((checks + 1))

# 3. A FORKLINE_TRACE that cannot be written: an error before any work,
#    naming the variable, the path and the call.
set +e
err=$(FORKLINE_TRACE="$tmp/no-such-directory/t.json" FORKLINE_WORKERS=2 "$fib" 10 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "an unwritable FORKLINE_TRACE was accepted"
for want in "FORKLINE_TRACE=$tmp/no-such-directory/t.json" fopen "No such file or directory"; do
  case "$err" in *"$want"*) ;; *) fail "unwritable FORKLINE_TRACE said \"$err\", without \"$want\"" ;; esac
done
checks=$((checks + 1))

# 4. A budget from FORKLINE_TRACE_EVENTS: a tiny one drops events and says
#    how many, in the file and on stderr; a bad one is refused.
err=$(FORKLINE_TRACE="$tmp/small.json" FORKLINE_TRACE_EVENTS=5 FORKLINE_WORKERS=2 "$fib" 20 2>&1 >/dev/null) ||
  fail "FORKLINE_TRACE_EVENTS=5 failed: $err"
case "$err" in *"budget of 5 events"*dropped*) ;; *) fail "a full budget said: $err" ;; esac
python3 - "$tmp/small.json" <<'PY' || fail "the trace of a full budget"
import json, sys
doc = json.load(open(sys.argv[1], encoding="utf-8"))
other = doc["otherData"]
assert other["event_budget"] == 5 and other["recorded_events"] <= 5, other
assert other["dropped_events"] > 0, other
marks = [e for e in doc["traceEvents"] if e["name"] == "trace_events_dropped"]
assert len(marks) == 1 and marks[0]["args"]["dropped_events"] == other["dropped_events"], marks
PY
rm -f "$tmp/small.json"
set +e
err=$(FORKLINE_TRACE="$tmp/bad.json" FORKLINE_TRACE_EVENTS=lots FORKLINE_WORKERS=2 "$fib" 10 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "FORKLINE_TRACE_EVENTS=lots was accepted"
case "$err" in *"FORKLINE_TRACE_EVENTS=lots"*) ;; *) fail "FORKLINE_TRACE_EVENTS=lots said: $err" ;; esac
rm -f "$tmp/bad.json"
checks=$((checks + 1))

# 5. Empty: off, no file anywhere.
(cd "$tmp" && FORKLINE_TRACE= FORKLINE_WORKERS=2 "$fib" 10 >/dev/null) || fail "FORKLINE_TRACE= broke the example"
[ -z "$(ls "$tmp" | grep -v -e '^fib.json$' -e '^child.json$' -e '^no-such-directory$' || true)" ] ||
  fail "FORKLINE_TRACE= left a file: $(ls "$tmp")"
checks=$((checks + 1))

echo "trace_test: $checks checks passed"
