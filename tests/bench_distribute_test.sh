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
echo "bench_distribute_test: ok"
