#!/usr/bin/env bash
# tests/bench_distribute_test.sh: `forkline-bench distribute sweep` on a tiny
# schedule. The output must have its shape (the table, a JSON point per
# policy and load, the ideal among them, a Markdown table) and every
# scheduled request must be accounted for: completed + rejected + expired =
# scheduled, in every accepted run. The lateness bound is set far out so that
# a loaded machine cannot refuse the runs; nothing here looks at a timing.
#
#   bash tests/bench_distribute_test.sh PATH_TO_forkline-bench
#   (exit 77: skipped, no python3 to read the JSON)
set -euo pipefail

bench=${1:?usage: bench_distribute_test.sh PATH_TO_forkline-bench}
if ! command -v python3 >/dev/null 2>&1; then
  echo "bench_distribute_test: python3 is not installed; skipping"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "bench_distribute_test: FAIL: $*" >&2
  exit 1
}

policies=push,push-p2c,pull,steal,gossip,executor,mutex
"$bench" distribute sweep --rho 0.5,1.2 --requests 300 --reps 2 --policies "$policies" \
  --late-us 1000000 --json "$tmp/out.json" --markdown "$tmp/out.md" \
  >"$tmp/table" 2>"$tmp/err" || fail "forkline-bench distribute failed: $(tail -5 "$tmp/err")"

grep -q '^service .*rho .*policy' "$tmp/table" || fail "no table header: $(head -3 "$tmp/table")"
grep -q '^| service | rho | policy' "$tmp/out.md" || fail "no Markdown table"

python3 - "$tmp/out.json" "$policies" <<'PY' || fail "JSON check failed"
import json, sys
points = json.load(open(sys.argv[1]))
want = ["ideal"] + sys.argv[2].split(",")
seen = {(p["policy"], p["rho"]) for p in points}
for pol in want:
    for rho in (0.5, 1.2):
        assert (pol, rho) in seen, "no point for %s at rho %s" % (pol, rho)
assert len(points) == 2 * len(want), "%d points, expected %d" % (len(points), 2 * len(want))
for p in points:
    assert p["accepted_runs"] == 2 and p["refused_runs"] == 0, p
    assert p["scheduled"] == 300 * p["accepted_runs"], p
    assert p["completed"] + p["rejected"] + p["expired"] == p["scheduled"], "requests unaccounted: %s" % p
    for q in ("p50_us", "p99_us", "p999_us"):
        assert 0 < p[q]["min"] <= p[q]["median"] <= p[q]["max"], (q, p)
    assert p["p50_us"]["median"] <= p["p99_us"]["median"] <= p["p999_us"]["median"], p
    assert p["throughput_per_s"]["median"] > 0, p
PY
# saturation: a point per load and admission policy, every reported run
# conserved (completed + refused + expired + cancelled = requests per class
# sum), a depth series, the per-class figures; refusals only under reject
# and shed, and shed refuses the lowest class no less than the highest.
"$bench" distribute saturation --rho 0.5,2.0 --requests 300 --reps 1 --capacity 16 \
  --late-us 1000000 --json "$tmp/sat.json" --markdown "$tmp/sat.md" \
  >"$tmp/sat" 2>"$tmp/err" || fail "distribute saturation failed: $(tail -5 "$tmp/err")"
grep -q '^  rho admit' "$tmp/sat" || fail "no saturation table: $(head -3 "$tmp/sat")"
grep -q '^| rho | admission' "$tmp/sat.md" || fail "no saturation Markdown table"
python3 - "$tmp/sat.json" <<'PY' || fail "saturation JSON check failed"
import json, sys
points = json.load(open(sys.argv[1]))
seen = {(p["rho"], p["admission"]) for p in points}
assert seen == {(r, a) for r in (0.5, 2.0) for a in ("block", "reject", "shed")}, seen
for p in points:
    assert p["capacity"] == 16 and p["refused_unconserved"] == 0, p
    assert p["accepted_runs"] == 1 and len(p["runs"]) == 1, p
    r = p["runs"][0]
    assert r["conserved"] and r["depth_every_ms"], p
    assert max(r["depth_every_ms"]) == r["depth_max"] <= 16, r["depth_max"]
    assert r["peak_queued"] <= 16 and r["peak_rss_kb"] > 0, r
    cls = r["classes"]
    assert [c["class"] for c in cls] == [0, 1, 2], cls
    assert sum(c["completed"] + c["refused"] for c in cls) + r["expired"] + r["cancelled"] == 300, r
    if p["admission"] == "block":
        assert all(c["refused"] == 0 for c in cls), p
    for c in cls:
        assert c["measured"] <= c["completed"], c
        assert (c["p99_us"] > 0) == (c["measured"] > 0), c
PY

# batch: a point per load and variant (the stream and six K, T pairs), every
# item completed once, batches no larger than K, the stream's all of one.
"$bench" distribute batch --rho 0.3 --requests 300 --reps 1 --late-us 1000000 \
  --json "$tmp/batch.json" --markdown "$tmp/batch.md" \
  >"$tmp/batch" 2>"$tmp/err" || fail "distribute batch failed: $(tail -5 "$tmp/err")"
grep -q '^ load variant' "$tmp/batch" || fail "no batch table: $(head -3 "$tmp/batch")"
grep -q '^| load | variant' "$tmp/batch.md" || fail "no batch Markdown table"
python3 - "$tmp/batch.json" <<'PY' || fail "batch JSON check failed"
import json, sys
points = json.load(open(sys.argv[1]))
want = {"stream"} | {"K=%d T=%d" % (k, t) for k in (4, 16, 64) for t in (50, 200)}
assert {p["variant"] for p in points} == want and len(points) == 7, points
for p in points:
    assert p["accepted_runs"] == 1, p
    r = p["runs"][0]
    assert r["completed"] == 300, r
    assert 1 <= r["max_batch"] <= p["k"], (p["k"], r)
    assert 1 <= r["mean_batch"] <= r["max_batch"], r
    assert r["batches"] * r["mean_batch"] >= 299.5, r
    if p["variant"] == "stream":
        assert r["max_batch"] == 1 and r["batches"] == 300, r
    assert 0 < r["p50_us"] <= r["p99_us"], r
PY
echo "bench_distribute_test: ok"
