#!/usr/bin/env bash
# tests/logstat_mpi_test.sh: logstat-mpi under mpirun at 1-4 ranks, against
# single-process logstat, byte for byte.
#
#   bash tests/logstat_mpi_test.sh PATH/TO/logstat PATH/TO/logstat-mpi PATH/TO/scripts/gen-log
#
# Checks, for P = 1, 2, 3, 4 (ranks oversubscribed on a small machine): the
# same stdout as logstat and the same malformed-line message (count and
# first line number) for --by ip|status|path, --top K and --distinct, on a generated
# log, a CRLF log, a last line without newline, malformed lines, an empty
# file, a file with fewer bytes than ranks, fewer lines than ranks and one
# line longer than a rank's share; a missing file (on every rank, or on one rank
# alone) ends every rank with the
# message and status 1, without a hang; a rank killed mid-run ends the job
# with mpirun's message, without a hang; --report prints one line per rank.
# Exit 77 (skipped) when logstat-mpi was not built (no MPI) or mpirun is
# missing, except under CI=true, where scripts/setup installs MPI: there the
# absence fails.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 LOGSTAT LOGSTAT_MPI GEN_LOG" >&2
  exit 2
fi
logstat=$1
logstat_mpi=$2
gen_log=$3

skip() {
  if [ "${CI:-}" = "true" ]; then
    echo "FAIL: $* (CI=true: scripts/setup installs MPI)" >&2
    exit 1
  fi
  echo "skip: $*"
  exit 77
}
[ -n "$logstat_mpi" ] && [ -x "$logstat_mpi" ] || skip "logstat-mpi not built (MPI not found when configuring)"
command -v mpirun >/dev/null 2>&1 || skip "mpirun not found"
command -v python3 >/dev/null 2>&1 || skip "python3 not found"

# Open MPI: root needs consent; containers often refuse cross-memory attach.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1
# One host: ob1 over shared memory, without UCX's probe (~0.2 s per MPI_Init).
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1} OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
# Under ASan+UBSan: memory errors and undefined behaviour are checked, leaks
# are not. Open MPI's plugins keep allocations until exit and are unloaded by
# then, so LeakSanitizer reports them from "<unknown module>" stacks that no
# suppression can name. logstat's own code is leak-checked by its single-
# process test.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

mpi() {  # mpi P ARGS...: logstat-mpi at P ranks, 1 worker each, bounded in time
  local p=$1; shift
  timeout 120 mpirun --oversubscribe -np "$p" "$logstat_mpi" -p 1 "$@"
}

# The first lines of the program's own messages (not mpirun's).
own() { grep -a "^$1: " "$2" | sed "s/^$1: //" || true; }

compare() {  # compare NAME FILE [logstat options...]
  local name=$1 file=$2; shift 2
  local rc_ref=0
  "$logstat" -p 1 "$@" "$file" >"$tmp/ref.out" 2>"$tmp/ref.err" || rc_ref=$?
  for p in 1 2 3 4; do
    local rc=0
    mpi "$p" "$@" "$file" >"$tmp/mpi.out" 2>"$tmp/mpi.err" || rc=$?
    [ "$rc" = "$rc_ref" ] || fail "$name at $p ranks: exit status $rc, logstat's $rc_ref: $(head -3 "$tmp/mpi.err")"
    cmp -s "$tmp/ref.out" "$tmp/mpi.out" ||
      fail "$name at $p ranks: stdout differs from logstat's: $(cmp "$tmp/ref.out" "$tmp/mpi.out" 2>&1 | head -1)"
    [ "$(own logstat "$tmp/ref.err")" = "$(own logstat-mpi "$tmp/mpi.err")" ] ||
      fail "$name at $p ranks: messages differ: '$(own logstat "$tmp/ref.err")' against '$(own logstat-mpi "$tmp/mpi.err")'"
  done
}

gen() { python3 "$gen_log" "$@"; }

# --- a generated log, with malformed lines, every key kind, --top ---------------
gen --lines 30000 --seed 11 --clients 2000 --malformed-per-million 500 >"$tmp/a.log"
compare "ip" "$tmp/a.log" --by ip --chunk-kib 64
compare "status" "$tmp/a.log" --by status
compare "path" "$tmp/a.log" --by path --chunk-kib 16
compare "top 7" "$tmp/a.log" --top 7
# Exact distinct counts add up over the ranks; the HyperLogLog sketches merge
# (register-wise max) into exactly the single process's sketch, so the
# estimate is the same to the digit.
compare "distinct" "$tmp/a.log" --distinct
compare "distinct by path" "$tmp/a.log" --distinct --by path

# --- CRLF, and a last line without newline ----------------------------------------
head -n 5000 "$tmp/a.log" | sed 's/$/\r/' >"$tmp/crlf.log"
compare "CRLF" "$tmp/crlf.log"
head -n 777 "$tmp/a.log" | head -c -1 >"$tmp/nonl.log"
compare "no final newline" "$tmp/nonl.log"

# --- small and degenerate inputs ---------------------------------------------------
: >"$tmp/empty.log"
compare "empty file" "$tmp/empty.log"
head -n 1 "$tmp/a.log" >"$tmp/one.log"
compare "one line (fewer lines than ranks)" "$tmp/one.log"
head -n 2 "$tmp/a.log" >"$tmp/two.log"
compare "two lines" "$tmp/two.log"
printf 'x\n' >"$tmp/tiny.log"
compare "2 bytes (fewer bytes than ranks), malformed" "$tmp/tiny.log"
printf 'abc' >"$tmp/nonl-tiny.log"
compare "3 bytes, no newline" "$tmp/nonl-tiny.log"
{ head -n 3 "$tmp/a.log"; python3 -c 'print("j" * 200000)'; head -n 3 "$tmp/a.log"; } >"$tmp/long.log"
compare "a line longer than a rank's share" "$tmp/long.log"

# --- errors: every rank ends, with the message and status 1 --------------------------
for p in 1 3; do
  rc=0
  mpi "$p" "$tmp/missing.log" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" = 1 ] || fail "missing file at $p ranks: exit status $rc, want 1 (124: a hang)"
  grep -q "^logstat-mpi: $tmp/missing.log: open: No such file or directory" "$tmp/err" ||
    fail "missing file at $p ranks: no open message: $(head -3 "$tmp/err")"
  [ ! -s "$tmp/out" ] || fail "missing file at $p ranks: something on stdout"
done
# One rank alone fails to open its file (a node whose copy is missing; here an
# MPMD launch gives rank 2 of 3 another path): that rank says so, and every
# rank ends with status 1, no output and no hang.
rc=0
timeout 120 mpirun --oversubscribe -np 2 "$logstat_mpi" -p 1 "$tmp/a.log" : \
  -np 1 "$logstat_mpi" -p 1 "$tmp/missing.log" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] || fail "one rank's file missing: exit status $rc, want 1 (124: a hang): $(head -3 "$tmp/err")"
grep -q "^logstat-mpi: $tmp/missing.log: open: No such file or directory" "$tmp/err" ||
  fail "one rank's file missing: no open message: $(head -3 "$tmp/err")"
[ "$(grep -c "^logstat-mpi: .*open:" "$tmp/err")" = 1 ] ||
  fail "one rank's file missing: the open message is not said once, by that rank: $(head -5 "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "one rank's file missing: something on stdout"
rc=0
mpi 2 - <"$tmp/a.log" >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q "standard input cannot be split" "$tmp/err" ||
  fail "stdin: want status 1 and a message, got $rc: $(head -3 "$tmp/err")"

# --- a rank killed mid-run: the job ends, with a message, within a bound ---------------
# A log large enough to take a few seconds at 2 ranks; rank processes are
# found by their command line, one is killed with SIGKILL once both run.
gen --lines 400000 --seed 5 >"$tmp/big.log"
for k in 1 2 3 4 5 6 7 8; do cat "$tmp/big.log"; done >"$tmp/bigger.log"
rm -f "$tmp/big.log"
start=$(date +%s)
timeout 120 mpirun --oversubscribe -np 2 "$logstat_mpi" -p 1 --chunk-kib 64 "$tmp/bigger.log" \
  >"$tmp/out" 2>"$tmp/err" &
job=$!
# The ranks' own command lines start with the program (mpirun's and timeout's do not).
pattern="^$(printf '%s' "$logstat_mpi" | sed 's/[][\.*^$+?(){}|]/\\&/g') -p 1 --chunk-kib 64 "
victim=""
for _ in $(seq 1 200); do
  if [ "$(pgrep -fc "$pattern" || true)" -ge 2 ]; then
    victim=$(pgrep -f "$pattern" | tail -n 1)
    break
  fi
  sleep 0.05
done
[ -n "$victim" ] || fail "killed rank: no rank process found"
kill -9 "$victim" 2>/dev/null || true
rc=0
wait "$job" || rc=$?
took=$(( $(date +%s) - start ))
[ "$rc" != 0 ] || fail "killed rank: the job exited 0"
[ "$rc" != 124 ] || fail "killed rank: the job hung (timeout)"
grep -qiE "signal 9|killed|exited on signal|aborted" "$tmp/err" ||
  fail "killed rank: no message saying a rank died: $(head -5 "$tmp/err")"
echo "ok: a rank killed mid-run ends the job (status $rc, ${took}s)"
rm -f "$tmp/bigger.log"

# --- --report: one line per rank, the combiner's reduction --------------------------
mpi 3 --report "$tmp/a.log" >/dev/null 2>"$tmp/err" || fail "--report failed: $(head -3 "$tmp/err")"
[ "$(grep -c '^logstat-mpi: rank=' "$tmp/err")" = 3 ] || fail "--report: want 3 rank lines: $(cat "$tmp/err")"
python3 - "$tmp/err" <<'PY' || fail "--report: figures do not add up"
import re, sys
rows = [dict(kv.split("=") for kv in l.split(": ", 1)[1].split()) for l in open(sys.argv[1]) if l.startswith("logstat-mpi: rank=")]
assert sum(int(r["records"]) + int(r["malformed"]) for r in rows) == 30000, rows
assert all(int(r["shuffle_naive_bytes"]) >= int(r["shuffle_bytes"]) for r in rows), rows
PY

echo "logstat_mpi_test: all checks passed"
