#!/usr/bin/env bash
# tests/logstat_test.sh: logstat end to end, against counts made another way.
#
#   bash tests/logstat_test.sh PATH/TO/logstat PATH/TO/scripts/gen-log
#
# Checks: gen-log is deterministic; logstat --by ip|status|path equals an
# awk | sort | uniq -c count of the same log, with chunks small enough that
# thousands of chunk boundaries are crossed; worker counts, stdin and a
# missing final newline change nothing; --top K is the head of the full
# list; malformed lines are counted exactly, with the right first line
# number, and never counted as requests; errors give their message and exit
# status. Works for the oneTBB peer too (messages then start with its name).
# Exit 77 (skipped) when a tool it compares with is missing.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 LOGSTAT GEN_LOG" >&2
  exit 2
fi
logstat=$1
gen_log=$2
prog=$(basename "$logstat")

for tool in python3 sha256sum sort uniq awk cmp head; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "skip: $tool not found"
    exit 77
  fi
done

tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

gen() { python3 "$gen_log" "$@"; }

# COUNT<TAB>KEY of whitespace field $1 of file $2, ordered as logstat orders.
reference() {
  LC_ALL=C awk -v f="$1" '{ print $f }' "$2" | LC_ALL=C sort | uniq -c |
    LC_ALL=C awk '{ print $1 "\t" $2 }' | LC_ALL=C sort -t "$(printf '\t')" -k1,1nr -k2,2
}

# Lines of $1 that are logstat's own messages (the I/O layer may add a notice
# of its own, e.g. when it falls back from io_uring).
own_messages() { grep -a "^$prog: " "$1" || true; }

same() {  # same FILE_A FILE_B WHAT
  cmp -s "$1" "$2" || fail "$3: $(cmp "$1" "$2" 2>&1 | head -n 1)"
}

# --- gen-log is deterministic --------------------------------------------------
a=$(gen --lines 20000 --seed 7 | sha256sum)
b=$(gen --lines 20000 --seed 7 | sha256sum)
c=$(gen --lines 20000 --seed 8 | sha256sum)
[ "$a" = "$b" ] || fail "gen-log: same seed, different bytes"
[ "$a" != "$c" ] || fail "gen-log: different seeds, same bytes"
[ "$(gen --lines 1000 --seed 3 | wc -l)" -eq 1000 ] || fail "gen-log: --lines 1000 is not 1000 lines"

# --- counts equal awk | sort | uniq -c -----------------------------------------
log=$tmp/access.log
gen --lines 200000 --seed 42 >"$log"
declare -A field=([ip]=1 [path]=7 [status]=9)
for by in ip status path; do
  reference "${field[$by]}" "$log" >"$tmp/ref.$by"
  [ -s "$tmp/ref.$by" ] || fail "empty reference for --by $by"
  "$logstat" --by "$by" --chunk-kib 4 -p 2 "$log" >"$tmp/out.$by" 2>"$tmp/err"
  same "$tmp/out.$by" "$tmp/ref.$by" "--by $by differs from awk | sort | uniq -c"
  [ -z "$(own_messages "$tmp/err")" ] || fail "--by $by on a clean log said: $(cat "$tmp/err")"
done
echo "ok: --by ip, status, path equal the reference ($(wc -l <"$tmp/ref.ip") clients)"

# Chunks of 1 KiB: a handful of lines each.
"$logstat" --chunk-kib 1 -p 2 "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "--chunk-kib 1"
# The other I/O backend.
FORKLINE_IO=psync "$logstat" --chunk-kib 4 -p 2 "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "FORKLINE_IO=psync"

# --- workers, stdin and the last newline change nothing -------------------------
"$logstat" -p 1 "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "-p 1"
"$logstat" -p 2 --chunk-kib 64 "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "-p 2 --chunk-kib 64"
"$logstat" -p 3 --chunk-kib 16 "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "-p 3 (more workers than cores)"
# shellcheck disable=SC2002  # a pipe, not a file, on stdin
cat "$log" | "$logstat" -p 2 --chunk-kib 8 - >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "a pipe on stdin, FILE -"
# shellcheck disable=SC2002
cat "$log" | "$logstat" -p 2 >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "a pipe on stdin, no FILE"
"$logstat" -p 2 --chunk-kib 8 <"$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "a file on stdin"
# A regular file is read in positional pieces by default; --stream reads it
# through one reader as a pipe is read. Both give the same counts.
"$logstat" -p 2 --chunk-kib 4 --stream "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.ip" "--stream"
"$logstat" -p 3 --chunk-kib 1 --by path "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.path" "positional pieces of 1 KiB, --by path"
head -c -1 "$log" >"$tmp/no-newline.log"
"$logstat" --by path --chunk-kib 4 "$tmp/no-newline.log" >"$tmp/out" 2>"$tmp/err"
same "$tmp/out" "$tmp/ref.path" "a last line without newline"
[ -z "$(own_messages "$tmp/err")" ] || fail "no final newline: $(cat "$tmp/err")"
echo "ok: -p 1/2/3, chunk sizes, stdin (pipe and file), no final newline"

# --- --top K ---------------------------------------------------------------------
"$logstat" --top 5 "$log" >"$tmp/out"
head -n 5 "$tmp/ref.ip" >"$tmp/ref.top"
same "$tmp/out" "$tmp/ref.top" "--top 5"
"$logstat" --by=status --top=100 "$log" >"$tmp/out"
same "$tmp/out" "$tmp/ref.status" "--top larger than the key count"
echo "ok: --top"

# --- --distinct ----------------------------------------------------------------
# The exact count is the reference's number of keys; the HyperLogLog estimate
# is within 3% of it (16384 registers: expected error 0.81%).
"$logstat" --distinct -p 2 "$log" >"$tmp/out"
exact=$(wc -l <"$tmp/ref.ip")
[ "$(sed -n 's/^distinct\t//p' "$tmp/out")" = "$exact" ] || fail "--distinct: $(head -1 "$tmp/out"), want $exact"
python3 - "$tmp/out" "$exact" <<'PY' || fail "--distinct: estimate beyond 3%: $(cat "$tmp/out")"
import sys
f = dict(l.rstrip("\n").split("\t") for l in open(sys.argv[1]))
assert abs(float(f["hll_estimate"]) - int(sys.argv[2])) <= 0.03 * int(sys.argv[2]), f
assert f["hll_expected_error"] == "0.81%", f
PY
"$logstat" --distinct -p 1 "$log" >"$tmp/out1"
same "$tmp/out" "$tmp/out1" "--distinct at 1 and 2 workers"
echo "ok: --distinct"

# --- which lines count: a small log written by hand -------------------------------
{
  printf '%s\n' '10.0.0.1 - - [27/Nov/2026:10:00:00 +0000] "GET /a?x=1 HTTP/1.1" 200 512'
  printf '%s\n' '10.0.0.2 - frank [27/Nov/2026:10:00:01 +0000] "POST /a HTTP/1.1" 404 - "-" "an \"agent\" \\ here"'
  printf '%s\r\n' '10.0.0.1 - - [27/Nov/2026:10:00:02 +0000] "GET /a HTTP/1.0" 200 0 "http://r.example/" "x"'
  printf '%s\n' '::1 - - [27/Nov/2026:10:00:03 +0000] "GET /b HTTP/2.0" 500 7 "" ""'
  # Malformed, one rule each; the first is line 5.
  printf '%s\n' '10.0.0.9 - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 200 1'         # a field missing
  printf '%s\n' '10.0.0.9 - - 27/Nov/2026:10:00:04 +0000 "GET /c HTTP/1.1" 200 1'         # no [date]
  printf '%s\n' '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] GET /c HTTP/1.1 200 1'         # request not quoted
  printf '%s\n' '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c" 200 1'                # request of two words
  printf '%s\n' '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 2x0 1'       # status not numeric
  printf '%s\n' '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 2000 1'      # status of 4 digits
  printf '%s\n' '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 200 x'       # bytes not numeric
  printf '%s\n' '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 200 1 "r"'   # referer without agent
  printf '%s\n' '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 200 1 "r" "a" 9'  # a field too many
  printf '10.0.0.9\t- - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 200 1\n'           # a tab, not a space
  printf ' 10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 200 1\n'           # a leading space
  printf '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /c HTTP/1.1" 200 1 "r" "\xc3\xa9"\n'  # not ASCII
  printf '\n'                                                                              # empty
  printf '\x00\x01\xfe\xff binary\x7f junk\n'                                              # binary
  printf '10.0.0.9 - - [27/Nov/2026:10:00:04 +0000] "GET /%s HTTP/1.1" 200 1\n' "$(head -c 40000 /dev/zero | tr '\0' 'x')"  # overlong
  printf '10.0.0.9 - - [27/Nov/2026:10:0'                                                  # truncated, no newline
} >"$tmp/hand.log"
printf '2\t10.0.0.1\n1\t10.0.0.2\n1\t::1\n' >"$tmp/want.ip"
printf '2\t200\n1\t404\n1\t500\n' >"$tmp/want.status"
printf '2\t/a\n1\t/a?x=1\n1\t/b\n' >"$tmp/want.path"
for by in ip status path; do
  for chunk in 1 1024; do
    "$logstat" --by "$by" --chunk-kib "$chunk" -p 2 "$tmp/hand.log" >"$tmp/out" 2>"$tmp/err"
    same "$tmp/out" "$tmp/want.$by" "hand-written log, --by $by --chunk-kib $chunk"
    [ "$(own_messages "$tmp/err")" = "$prog: 16 malformed lines (first: line 5)" ] ||
      fail "hand-written log, --by $by --chunk-kib $chunk: stderr was: $(cat "$tmp/err")"
  done
done
echo "ok: Common and Combined lines count, 16 kinds of malformed line do not"

# --- malformed lines in a large log: exact count, first line across chunks ------
# Bad lines go in at known places (1-based line numbers of the result).
python3 - "$log" "$tmp/dirty.log" "$tmp/one-bad.log" <<'EOF'
import sys
good = open(sys.argv[1], "rb").read().split(b"\n")[:-1]
bad = {
    1000: b"garbage",
    50001: b"",
    50002: b"",
    77777: b"\x00\x01\x02 binary \xff\xfe",
    120000: good[5][: good[5].index(b"]")],          # truncated inside the date
    150000: good[6].replace(b'] "', b"] ", 1),         # request not quoted
    199999: b"1.2.3.4 - - [x] \"GET / HTTP/1.1\" abc 1",
}
out = []
it = iter(good)
total = len(good) + len(bad)
for n in range(1, total + 1):
    out.append(bad[n] if n in bad else next(it))
# And a last line without its newline, also malformed.
open(sys.argv[2], "wb").write(b"\n".join(out) + b"\n" + b"9.9.9.9 - - [27/Nov")
lines = list(good)
lines.insert(123456, b"not a log line")                # line 123457
open(sys.argv[3], "wb").write(b"\n".join(lines) + b"\n")
EOF
for run in "ip 1" "ip 2" "status 2" "path 2" "ip 2 --stream"; do
  read -r by p mode <<<"$run"
  # shellcheck disable=SC2086  # an empty mode is no argument
  "$logstat" --by "$by" --chunk-kib 4 -p "$p" $mode "$tmp/dirty.log" >"$tmp/out" 2>"$tmp/err"
  same "$tmp/out" "$tmp/ref.$by" "dirty log, --by $by -p $p: counts"
  [ "$(own_messages "$tmp/err")" = "$prog: 8 malformed lines (first: line 1000)" ] ||
    fail "dirty log, --by $by -p $p: stderr was: $(cat "$tmp/err")"
done
"$logstat" --chunk-kib 4 -p 2 "$tmp/one-bad.log" >"$tmp/out" 2>"$tmp/err"
same "$tmp/out" "$tmp/ref.ip" "one bad line: counts"
[ "$(own_messages "$tmp/err")" = "$prog: 1 malformed line (first: line 123457)" ] ||
  fail "one bad line: stderr was: $(cat "$tmp/err")"
# shellcheck disable=SC2002
cat "$tmp/one-bad.log" | "$logstat" --chunk-kib 2 -p 2 >"$tmp/out" 2>"$tmp/err"
[ "$(own_messages "$tmp/err")" = "$prog: 1 malformed line (first: line 123457)" ] ||
  fail "one bad line on a pipe: stderr was: $(cat "$tmp/err")"
echo "ok: malformed lines counted exactly, first line found across chunks"

# gen-log's own malformed lines replace good ones one for one: logstat finds
# exactly the lines that differ from the clean log of the same seed.
gen --lines 50000 --seed 9 >"$tmp/g0.log"
gen --lines 50000 --seed 9 --malformed-per-million 3000 >"$tmp/g1.log"
want=$(python3 - "$tmp/g0.log" "$tmp/g1.log" <<'EOF'
import sys
a = open(sys.argv[1], "rb").read().split(b"\n")
b = open(sys.argv[2], "rb").read().split(b"\n")
assert len(a) == len(b), "gen-log: malformed lines changed the line count"
diff = [i + 1 for i, (x, y) in enumerate(zip(a, b)) if x != y]
assert diff, "gen-log: --malformed-per-million made no malformed line"
print(f"{len(diff)} malformed line{'s' if len(diff) > 1 else ''} (first: line {diff[0]})")
EOF
)
"$logstat" --chunk-kib 4 -p 2 "$tmp/g1.log" >/dev/null 2>"$tmp/err"
[ "$(own_messages "$tmp/err")" = "$prog: $want" ] ||
  fail "gen-log --malformed-per-million: want '$want', stderr was: $(cat "$tmp/err")"
echo "ok: gen-log --malformed-per-million ($want)"

# --- errors and exit statuses ----------------------------------------------------
: >"$tmp/empty.log"
"$logstat" "$tmp/empty.log" >"$tmp/out" 2>"$tmp/err" || fail "empty input: exit $?"
[ ! -s "$tmp/out" ] || fail "empty input printed something"
[ -z "$(own_messages "$tmp/err")" ] || fail "empty input: $(cat "$tmp/err")"

status=0
"$logstat" "$tmp/missing.log" >"$tmp/out" 2>"$tmp/err" || status=$?
[ "$status" -eq 1 ] || fail "missing file: exit $status, want 1"
[ "$(own_messages "$tmp/err")" = "$prog: $tmp/missing.log: open: No such file or directory" ] ||
  fail "missing file: stderr was: $(cat "$tmp/err")"

mkdir "$tmp/dir.log"
status=0
"$logstat" "$tmp/dir.log" >"$tmp/out" 2>"$tmp/err" || status=$?
[ "$status" -eq 1 ] || fail "a directory: exit $status, want 1"
[ "$(own_messages "$tmp/err")" = "$prog: $tmp/dir.log: read: Is a directory" ] ||
  fail "a directory: stderr was: $(cat "$tmp/err")"

"$logstat" --help >"$tmp/out" || fail "--help: exit $?"
grep -q "^usage: $prog " "$tmp/out" || fail "--help printed no usage line"

for bad_args in "--by host" "--top 0" "-p x" "--bogus" "a.log b.log" "--top"; do
  status=0
  # shellcheck disable=SC2086  # split on purpose
  "$logstat" $bad_args </dev/null >/dev/null 2>"$tmp/err" || status=$?
  [ "$status" -eq 2 ] || fail "'$bad_args': exit $status, want 2"
  grep -q "^$prog: " "$tmp/err" || fail "'$bad_args': no message"
done

if [ -w /dev/full ]; then
  status=0
  "$logstat" "$log" >/dev/full 2>"$tmp/err" || status=$?
  [ "$status" -eq 1 ] || fail "output to /dev/full: exit $status, want 1"
  grep -q "^$prog: standard output: write: No space left on device" "$tmp/err" ||
    fail "output to /dev/full: stderr was: $(cat "$tmp/err")"
fi
echo "ok: errors"
echo "PASS"
