#!/usr/bin/env bash
# tests/probe_test.sh: end-to-end checks of forkline-probe's external-command
# mode, against tests/probe_child (a program not linked with forkline that
# logs what it was given and fails on request). Every worker count must be
# run with FORKLINE_WORKERS and {workers} set to it, appear in the JSON with
# its repetitions within the bounds asked for, and a command that fails
# (non-zero exit, signal, missing or unrunnable program) must stop the probe,
# be reported with its stderr and its worker count, and never be fitted.
# Nothing here looks at a timing.
#
#   bash tests/probe_test.sh PATH_TO_forkline-probe PATH_TO_probe_child
#   (exit 77: skipped, no python3 to read the JSON)
set -euo pipefail

probe=${1:?usage: probe_test.sh PATH_TO_forkline-probe PATH_TO_probe_child}
child=${2:?usage: probe_test.sh PATH_TO_forkline-probe PATH_TO_probe_child}
if ! command -v python3 >/dev/null 2>&1; then
  echo "probe_test: python3 is not installed; skipping"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Whatever forkline-probe writes by default lands in here, not in the build
# tree, and its host ceiling cache too, not in the home directory.
cd "$tmp"
export XDG_CACHE_HOME="$tmp/cache"

checks=0
fail() {
  echo "probe_test: FAIL: $*" >&2
  exit 1
}

# Runs forkline-probe with the given arguments, all its output in $tmp/out,
# its exit status in $status. No run may take long: a hang is a failure too.
status=0
run_probe() {
  status=0
  timeout 120 "$probe" "$@" >"$tmp/out" 2>&1 || status=$?
  [ "$status" != 124 ] || fail "forkline-probe $* did not finish in 120 s: $(tail -5 "$tmp/out")"
}

# python3 -c with the JSON file as argv[1]; the script raises to fail.
check_json() {
  local file=$1 what=$2 script=$3
  shift 3
  python3 -c "$script" "$file" "$@" 2>"$tmp/py_err" || fail "$what: $(cat "$tmp/py_err")"
}

# --- A probe that succeeds: counts substituted, exported, all in the JSON. ---
# FORKLINE_WORKERS=1 in our environment must be replaced, not inherited.
# --busy-retries 0: a busy test machine must not add runs to the counts checked.
FORKLINE_WORKERS=1 run_probe --workers 1,2,3 --warmup 1 --min-reps 2 --reps 4 --busy-retries 0 \
  --json "$tmp/ok.json" --csv "$tmp/ok.csv" --out "$tmp/report" --no-plots -- \
  "$child" --ms 3 --workers-arg '{workers}' --expect-env --tag 'w{workers}-{workers}' --log "$tmp/ok.log"
[ "$status" = 0 ] || fail "a probe of a good command exited $status: $(tail -20 "$tmp/out")"
[ -s "$tmp/ok.json" ] || fail "--json did not write $tmp/ok.json"
check_json "$tmp/ok.json" "the JSON of a good probe" '
import json, sys
doc = json.load(open(sys.argv[1]))
ws = doc["workloads"]
assert len(ws) == 1, "%d workloads, not 1" % len(ws)
w = ws[0]
pts = w["points"]
assert [p["workers"] for p in pts] == [1, 2, 3], "points at %s, not [1, 2, 3]" % [p["workers"] for p in pts]
for p in pts:
    assert 2 <= p["reps"] <= 4, "%d reps at %d workers, not 2..4" % (p["reps"], p["workers"])
    assert p["min_s"] > 0 and p["min_s"] <= p["median_s"] <= p["max_s"], "min/median/max out of order: %s" % p
assert w["verdict"] != "failed", "verdict failed: %s" % w.get("error")
assert not w.get("error"), "error set: %s" % w["error"]
assert "serial_fraction" in w["amdahl"] and "status" in w["amdahl"], "no amdahl fit: %s" % w.get("amdahl")
for key in ("alpha", "beta", "gamma", "peak_workers"):
    assert key in w["usl"], "usl has no %s" % key
assert len(w["karp_flatt"]) == 3, "karp_flatt has %d entries, not 3" % len(w["karp_flatt"])
c = w["usl_costs"]
assert c["workers"] == 3 and c["paths"] == 3, "usl_costs at the largest count: %s" % c
for key in ("effective_workers", "contention_share", "coherency_share", "half_efficiency_workers"):
    assert key in c, "usl_costs has no %s" % key
'
checks=$((checks + 1))

# The log: a line per run (one warm-up and the JSON's reps at each count),
# each with FORKLINE_WORKERS, the substituted argument and the tag all N.
check_json "$tmp/ok.json" "the runs the command logged" '
import json, re, sys
doc = json.load(open(sys.argv[1]))
reps = {p["workers"]: p["reps"] for p in doc["workloads"][0]["points"]}
seen = {}
for line in open(sys.argv[2]):
    m = re.fullmatch(r"run workers=(\d+) env=(\S+) arg=(-?\d+) tag=(\S*)\n", line)
    assert m, "unexpected log line %r" % line
    n = int(m.group(1))
    assert m.group(2) == str(n), "FORKLINE_WORKERS=%s in a run at %d workers" % (m.group(2), n)
    assert m.group(3) == str(n), "{workers} became %s in a run at %d workers" % (m.group(3), n)
    assert m.group(4) == "w%d-%d" % (n, n), "{workers} inside an argument gave %r at %d workers" % (m.group(4), n)
    seen[n] = seen.get(n, 0) + 1
want = {n: r + 1 for n, r in reps.items()}
assert seen == want, "runs per count %s, not one warm-up plus the JSON reps %s" % (seen, want)
' "$tmp/ok.log"
checks=$((checks + 1))

# The CSV: a header and one row per count.
rows=$(grep -c '^probe_child,' "$tmp/ok.csv" || true)
[ "$rows" = 3 ] || fail "the CSV has $rows rows for probe_child, not 3: $(cat "$tmp/ok.csv")"
checks=$((checks + 1))

# --- Output that fills both pipes must not deadlock, nor reach our stdout. ---
run_probe --workers 1,2 --warmup 0 --min-reps 1 --reps 1 --json "$tmp/noise.json" --out "$tmp/report" --no-plots -- \
  "$child" --ms 1 --noise 300000
[ "$status" = 0 ] || fail "a command that writes 300 kB to stdout and stderr: exit status $status: $(tail -5 "$tmp/out")"
if grep -q "noise done on stdout" "$tmp/out"; then fail "the command's stdout was shown without --show-output"; fi
run_probe --workers 1 --warmup 0 --min-reps 1 --reps 1 --json "$tmp/shown.json" --out "$tmp/report" --no-plots \
  --show-output -- "$child" --ms 1 --noise 1000
[ "$status" = 0 ] || fail "--show-output: exit status $status: $(tail -5 "$tmp/out")"
grep -q "noise done on stdout" "$tmp/out" || fail "--show-output did not show the command's stdout"
checks=$((checks + 1))

# --- A command that fails at one count stops the probe, unfitted. ---
# Its last stderr line comes after 100 kB of noise: only the tail is kept,
# and the line must be in it.
run_probe --workers 1,2,3 --warmup 1 --min-reps 2 --reps 3 --busy-retries 0 --json "$tmp/fail.json" --out "$tmp/report" --no-plots -- \
  "$child" --ms 1 --fail-at 2 --noise 100000 --log "$tmp/fail.log"
[ "$status" != 0 ] || fail "a command that exits 5 at 2 workers: forkline-probe exited 0"
grep -q "failing on purpose at 2 workers" "$tmp/out" || fail "the command's stderr line is not shown: $(tail -5 "$tmp/out")"
grep -q "at 2 workers" "$tmp/out" || fail "the failing worker count is not named: $(tail -5 "$tmp/out")"
grep -q "status 5" "$tmp/out" || fail "the exit status is not shown: $(tail -5 "$tmp/out")"
size=$(wc -c <"$tmp/out")
[ "$size" -lt 65536 ] || fail "the failure report is $size bytes: the command's whole stderr, not its tail"
if grep -q "workers=3" "$tmp/fail.log"; then fail "the probe went on to 3 workers after a failure at 2"; fi
[ -s "$tmp/fail.json" ] || fail "--json was not written for a failed probe"
check_json "$tmp/fail.json" "the JSON of a failed probe" '
import json, sys
w = json.load(open(sys.argv[1]))["workloads"][0]
assert w["verdict"] == "failed", "verdict %r, not failed" % w["verdict"]
assert "failing on purpose at 2 workers" in (w.get("error") or ""), "error %r lacks the stderr line" % w.get("error")
amdahl = w.get("amdahl")
assert not (amdahl and amdahl.get("status") == "ok"), "a failed probe was fitted: %s" % amdahl
usl = w.get("usl")
assert not (usl and usl.get("status") == "ok"), "a failed probe was fitted: %s" % usl
assert all(p["workers"] != 3 for p in w["points"]), "a point at 3 workers after the failure at 2"
'
checks=$((checks + 1))

# --- A command killed by a signal: the signal is named. ---
run_probe --workers 1,2 --warmup 0 --min-reps 1 --reps 2 --json "$tmp/segv.json" --out "$tmp/report" --no-plots -- \
  "$child" --ms 1 --signal-at 2
[ "$status" != 0 ] || fail "a command that dies of SIGSEGV at 2 workers: forkline-probe exited 0"
grep -q "SIGSEGV" "$tmp/out" || fail "SIGSEGV is not named: $(tail -5 "$tmp/out")"
grep -q "at 2 workers" "$tmp/out" || fail "the count a signal came at is not named: $(tail -5 "$tmp/out")"
run_probe --workers 1 --warmup 0 --min-reps 1 --reps 1 --out "$tmp/report" --no-plots -- \
  "$child" --ms 1 --signal-at 1 --signal KILL
[ "$status" != 0 ] || fail "a command that dies of SIGKILL: forkline-probe exited 0"
grep -q "SIGKILL" "$tmp/out" || fail "SIGKILL is not named: $(tail -5 "$tmp/out")"
checks=$((checks + 1))

# --- Programs that cannot be run: 127 when missing, 126 when not executable. ---
run_probe --workers 1 --warmup 0 --min-reps 1 --reps 1 --out "$tmp/report" --no-plots -- "$tmp/no-such-program" --flag
[ "$status" != 0 ] || fail "a missing program: forkline-probe exited 0"
grep -q "no-such-program" "$tmp/out" || fail "a missing program is not named: $(tail -5 "$tmp/out")"
grep -q "status 127" "$tmp/out" || fail "a missing program does not give status 127: $(tail -5 "$tmp/out")"
grep -q "No such file or directory" "$tmp/out" || fail "a missing program does not say why: $(tail -5 "$tmp/out")"
run_probe --workers 1 --warmup 0 --min-reps 1 --reps 1 --out "$tmp/report" --no-plots -- no-such-command-on-any-path
[ "$status" != 0 ] || fail "a command not on PATH: forkline-probe exited 0"
grep -q "status 127" "$tmp/out" || fail "a command not on PATH does not give status 127: $(tail -5 "$tmp/out")"
printf 'not a program\n' >"$tmp/plain.txt"
chmod 644 "$tmp/plain.txt"
run_probe --workers 1 --warmup 0 --min-reps 1 --reps 1 --out "$tmp/report" --no-plots -- "$tmp/plain.txt"
[ "$status" != 0 ] || fail "a file that is not executable: forkline-probe exited 0"
grep -q "status 126" "$tmp/out" || fail "a non-executable file does not give status 126: $(tail -5 "$tmp/out")"
grep -q "Permission denied" "$tmp/out" || fail "a non-executable file does not say why: $(tail -5 "$tmp/out")"
checks=$((checks + 1))

# --- --ranks: every (ranks, workers) pair, {ranks} and {workers} substituted,
# fitted over ranks x workers (the pairs of the same product pooled). ---
run_probe --ranks 1,2 --workers 1,2 --warmup 1 --min-reps 2 --reps 3 --nodes 10,100 --node-workers 4 --busy-retries 0 \
  --json "$tmp/ranks.json" --csv "$tmp/ranks.csv" --out "$tmp/report" --no-plots -- \
  "$child" --ms 3 --workers-arg '{workers}' --ranks-arg '{ranks}' --expect-env --tag 'r{ranks}' --log "$tmp/ranks.log"
[ "$status" = 0 ] || fail "a probe with --ranks exited $status: $(tail -20 "$tmp/out")"
check_json "$tmp/ranks.json" "the JSON of a --ranks probe" '
import json, re, sys
w = json.load(open(sys.argv[1]))["workloads"][0]
shapes = [(p["workers"], p.get("ranks"), p.get("workers_per_rank")) for p in w["points"]]
assert shapes == [(1, 1, 1), (2, 1, 2), (2, 2, 1), (4, 2, 2)], "points %s" % shapes
for p in w["points"]:
    assert 2 <= p["reps"] <= 3, "%d reps at %s" % (p["reps"], p)
assert w["amdahl"]["status"] != "bad_input", "the fits refused pooled counts: %s" % w["amdahl"]
assert w["usl"]["status"] != "bad_input", "the fits refused pooled counts: %s" % w["usl"]
seen = {}
for line in open(sys.argv[2]):
    m = re.fullmatch(r"run workers=(\d+) env=(\S+) arg=(-?\d+) tag=r(\d+) ranks=(\d+)\n", line)
    assert m, "unexpected log line %r" % line
    n, env, arg, tag, ranks = m.groups()
    assert env == n and arg == n, "FORKLINE_WORKERS=%s, {workers}=%s in a run of %s workers per rank" % (env, arg, n)
    assert tag == ranks, "{ranks} inside an argument gave %s in a run of %s ranks" % (tag, ranks)
    key = (int(ranks), int(n))
    seen[key] = seen.get(key, 0) + 1
want = {(p["ranks"], p["workers_per_rank"]): p["reps"] + 1 for p in w["points"]}
assert seen == want, "runs per (ranks, workers) %s, not one warm-up plus the reps %s" % (seen, want)
' "$tmp/ranks.log"
grep -q "RxW" "$tmp/out" || fail "the --ranks table has no RxW column: $(head -5 "$tmp/out")"
grep -q "^predicted: .*4 workers per node" "$tmp/out" || fail "--nodes printed no prediction: $(tail -12 "$tmp/out")"
grep -Eq "^ +100 +400 " "$tmp/out" || fail "--nodes 100 with 4 workers per node is not a row of 400 workers: $(tail -12 "$tmp/out")"
head -1 "$tmp/ranks.csv" | grep -q ",ranks$" || fail "the CSV header has no ranks column: $(head -1 "$tmp/ranks.csv")"
rows=$(grep -c '^probe_child,.*,[12]$' "$tmp/ranks.csv" || true)
[ "$rows" = 4 ] || fail "the CSV has $rows rows with a rank count, not 4: $(cat "$tmp/ranks.csv")"
# A failure names its shape; --ranks without a command, or with 0, is a usage error.
run_probe --ranks 1,2 --workers 1,2 --warmup 0 --min-reps 1 --reps 1 --out "$tmp/report" --no-plots -- \
  "$child" --ms 1 --ranks-arg '{ranks}' --fail-at 2
[ "$status" != 0 ] || fail "a --ranks command failing at 2 workers per rank: forkline-probe exited 0"
grep -q "at 1 rank of 2 workers" "$tmp/out" || fail "the failing shape is not named: $(tail -5 "$tmp/out")"
run_probe --ranks 1,2 --no-plots
[ "$status" = 2 ] && grep -q "needs a command" "$tmp/out" || fail "--ranks without a command: status $status: $(cat "$tmp/out")"
run_probe --ranks 0,1 --no-plots -- "$child" --ms 1
[ "$status" = 2 ] && grep -q -- "--ranks: .*'0'" "$tmp/out" || fail "--ranks 0: status $status: $(cat "$tmp/out")"
checks=$((checks + 1))

# --- A busy host: a spinning process on one of our cpus. The runs are long
# enough (>= 0.3 s) for /proc/stat's 10 ms ticks to tell one cpu of others'
# work from none; the probe must say BUSY, and --strict must exit 3. ---
if command -v taskset >/dev/null 2>&1; then
  cpu=$(taskset -pc $$ | sed 's/.*: *//; s/[,-].*//')
  taskset -c "$cpu" bash -c 'while :; do :; done' &
  spinner=$!
  run_probe --workers 1 --warmup 0 --min-reps 2 --reps 2 --busy-retries 1 --strict --json "$tmp/busy.json" \
    --out "$tmp/report" --no-plots -- "$child" --ms 300
  kill "$spinner" 2>/dev/null || true
  wait "$spinner" 2>/dev/null || true
  [ "$status" = 3 ] || fail "--strict with a spinning process on cpu $cpu: exit status $status, want 3: $(tail -8 "$tmp/out")"
  grep -q "^host: *BUSY" "$tmp/out" || fail "a busy host is not reported: $(tail -8 "$tmp/out")"
  grep -q "the host was busy" "$tmp/out" || fail "the verdict does not say the host was busy: $(tail -8 "$tmp/out")"
  check_json "$tmp/busy.json" "the JSON of a busy run" '
import json, sys
w = json.load(open(sys.argv[1]))["workloads"][0]
assert w["disturbed_reps"] >= 2, "disturbed_reps %s with a spinning process" % w["disturbed_reps"]
assert w["disturbed"], "kept disturbed repetitions past the retries, but disturbed is false"
p = w["points"][0]
assert p["others_cpus"] is not None and p["others_cpus"] > 0.5, "others_cpus %s with a spinning process" % p["others_cpus"]
'
  checks=$((checks + 1))
fi

# --- report.html: one page, the verdict and a table, nothing fetched. ---
[ -f "$tmp/report/report.html" ] || fail "no report.html in the report folder"
grep -q "<table>" "$tmp/report/report.html" || fail "report.html has no table of points"
grep -q 'class="verdict' "$tmp/report/report.html" || fail "report.html has no verdict"
if grep -Eq '(src|href)="(https?:)?//' "$tmp/report/report.html"; then fail "report.html loads something over the network"; fi
checks=$((checks + 1))

# --- --compare: ratios, intervals and verdicts from two reports. ---
# Hand-made reports (nothing here times anything): at 1 worker B is the
# same, at 2 it is twice as slow, at 4 only A has it; at 8 B has 3 reps.
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def report(points):
    return {"host": {"hostname": "h"}, "workloads": [{"name": "w<&>", "points": [
        {"workers": n, "median_s": sorted(s)[len(s) // 2], "seconds": s} for n, s in points]}]}
base = [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01]
json.dump(report([(1, base), (2, [x / 2 for x in base]), (4, [x / 4 for x in base]), (8, base)]),
          open(d + "/a.json", "w"))
json.dump(report([(1, base[::-1]), (2, base), (8, base[:3])]), open(d + "/b.json", "w"))
PY
run_probe --compare "$tmp/a.json" "$tmp/b.json"
[ "$status" = 0 ] || fail "--compare of two good reports: exit status $status: $(cat "$tmp/out")"
grep -Eq '^ +1 +- .*1\.000 .*within noise' "$tmp/out" || fail "--compare: the same times are not within noise: $(cat "$tmp/out")"
grep -Eq '^ +2 +- .*2\.000 .*slower \(100\.0%\)' "$tmp/out" || fail "--compare: twice the time is not slower: $(cat "$tmp/out")"
grep -q "^  4 workers: only in A" "$tmp/out" || fail "--compare: a count only A has is not named: $(cat "$tmp/out")"
grep -Eq '^ +8 +- .*unknown: fewer than 5' "$tmp/out" || fail "--compare: 3 repetitions gave a verdict: $(cat "$tmp/out")"
grep -q "0 faster, 1 slower, 1 within noise, 1 without a verdict" "$tmp/out" || fail "--compare: the summary: $(cat "$tmp/out")"
run_probe --compare "$tmp/a.json" "$tmp/b.json" --strict
[ "$status" = 3 ] || fail "--compare --strict with a slower point: exit status $status, want 3"
run_probe --compare "$tmp/b.json" "$tmp/a.json" --strict
[ "$status" = 0 ] || fail "--compare --strict with B faster: exit status $status, want 0"
grep -Eq '^ +2 +- .*0\.500 .*faster \(-50\.0%\)' "$tmp/out" || fail "--compare: half the time is not faster: $(cat "$tmp/out")"
run_probe --compare "$tmp/a.json" "$tmp/missing.json"
[ "$status" = 1 ] || fail "--compare with a missing file: exit status $status, want 1"
grep -q "missing.json: cannot open it (open: No such file or directory, errno 2)" "$tmp/out" ||
  fail "--compare with a missing file does not name it, the call and the errno: $(cat "$tmp/out")"
echo '{"workloads": 3}' >"$tmp/notreport.json"
run_probe --compare "$tmp/a.json" "$tmp/notreport.json"
[ "$status" = 1 ] || fail "--compare with a JSON that is no report: exit status $status, want 1"
grep -q "notreport.json: not a forkline-probe report" "$tmp/out" || fail "--compare with a bad report: $(cat "$tmp/out")"
printf '{"workloads": [' >"$tmp/cut.json"
run_probe --compare "$tmp/cut.json" "$tmp/a.json"
[ "$status" = 1 ] || fail "--compare with a cut-off JSON: exit status $status, want 1"
grep -q "cut.json: not a JSON document" "$tmp/out" || fail "--compare with a cut-off file: $(cat "$tmp/out")"
run_probe --compare "$tmp/a.json"
[ "$status" = 2 ] || fail "--compare with one report: exit status $status, want 2"
checks=$((checks + 1))

echo "probe_test: $checks checks passed"
