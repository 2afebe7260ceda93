#!/usr/bin/env bash
# tests/flzip_test.sh: end-to-end checks of flzip. gzip (and pigz, when it is
# installed) must read back exactly the input, for sizes around the block
# boundaries, at several levels and block sizes, from files and from pipes;
# the output must not depend on the worker count; failures must say what
# failed and exit non-zero, and must not leave a partial FILE.gz.
#
#   bash tests/flzip_test.sh PATH_TO_flzip        (exit 77: skipped, no gzip)
set -euo pipefail

flzip=${1:?usage: flzip_test.sh PATH_TO_flzip}
if ! command -v gzip >/dev/null 2>&1; then
  echo "flzip_test: gzip is not installed; skipping"
  exit 77
fi
have_pigz=0
if command -v pigz >/dev/null 2>&1; then have_pigz=1; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

checks=0
fail() {
  echo "flzip_test: FAIL: $*" >&2
  exit 1
}

# The decoders' verdict on $1, which should hold exactly the bytes of $2.
same_after_decoding() {
  local gz=$1 want=$2 what=$3
  gzip -t "$gz" || fail "$what: gzip -t rejects the output"
  gzip -dc "$gz" | cmp -s - "$want" || fail "$what: gzip -dc does not give back the input"
  if [ "$have_pigz" = 1 ]; then
    pigz -dc "$gz" | cmp -s - "$want" || fail "$what: pigz -dc does not give back the input"
  fi
  checks=$((checks + 1))
}

# $1: input file; the rest: flzip options.
round_trip() {
  local f=$1
  shift
  local status=0
  "$flzip" "$@" -c "$f" >"$tmp/out.gz" || status=$?
  [ "$status" = 0 ] || fail "flzip $* -c $(basename "$f") exited $status"
  same_after_decoding "$tmp/out.gz" "$f" "flzip $* $(basename "$f")"
}

# Inputs: the edges of a block (32 KiB and 128 KiB blocks), incompressible
# bytes, and log-like text that compresses well.
: >"$tmp/empty"
printf 'x' >"$tmp/one_byte"
head -c 32768 /dev/urandom >"$tmp/block32"
head -c 32769 /dev/urandom >"$tmp/block32_plus_1"
head -c 131072 /dev/urandom >"$tmp/block128"
head -c 131073 /dev/urandom >"$tmp/block128_plus_1"
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >"$tmp/random"
awk 'BEGIN {
  srand(7)
  for (i = 0; i < 60000; i++)
    printf "10.%d.%d.%d - - [27/Nov/2024:%02d:%02d:%02d +0000] \"GET /shop/item/%d?ref=%d HTTP/1.1\" %d %d \"-\" \"client/%d.%d\"\n",
      int(rand() * 4), int(rand() * 256), int(rand() * 256), int(i / 3600) % 24, int(i / 60) % 60, i % 60,
      int(rand() * 5000), int(rand() * 50), (rand() < 0.9 ? 200 : 404), int(rand() * 40000), int(rand() * 3), int(rand() * 10)
}' >"$tmp/text"

for f in empty one_byte block32 block32_plus_1 block128 block128_plus_1 random text; do
  for b in 32 128; do
    for level in 1 6 9; do
      round_trip "$tmp/$f" -"$level" -b "$b"
    done
  done
done
round_trip "$tmp/text"  # the defaults: -6, its engine's block size

# Every engine this flzip was built with, at its default block size and at
# the smallest, at levels that map to each engine's own levels. A CI build
# must have them all (scripts/setup installs ISA-L and libdeflate).
engines=()
for e in zlib isal libdeflate; do
  if "$flzip" --engine "$e" -c "$tmp/one_byte" >/dev/null 2>"$tmp/err"; then
    engines+=("$e")
  elif grep -q "built without" "$tmp/err"; then
    [ "${CI:-}" != true ] || fail "--engine $e: a CI build must have it ($(cat "$tmp/err"))"
    echo "flzip_test: flzip was built without $e; its checks are skipped"
  else
    fail "--engine $e on one byte failed: $(cat "$tmp/err")"
  fi
done
for e in "${engines[@]}"; do
  for f in empty one_byte block32_plus_1 block128_plus_1 random text; do
    for level in 1 3 6 9; do
      round_trip "$tmp/$f" --engine "$e" -"$level"
    done
    round_trip "$tmp/$f" --engine "$e" -2 -b 32
  done
  "$flzip" --engine "$e" -p 1 -b 64 -c "$tmp/text" >"$tmp/p1.gz"
  "$flzip" --engine "$e" -p 3 -b 64 -c "$tmp/text" >"$tmp/p3.gz"
  cmp -s "$tmp/p1.gz" "$tmp/p3.gz" || fail "--engine $e: -p 1 and -p 3 give different output"
  # shellcheck disable=SC2002
  cat "$tmp/random" | "$flzip" --engine="$e" -1 | cat >"$tmp/out.gz" || fail "--engine=$e through pipes exited non-zero"
  same_after_decoding "$tmp/out.gz" "$tmp/random" "--engine=$e through pipes"
done

# Standard input to standard output, through a pipe and with "-". The cats
# are there to make pipes, which are read differently from files.
# shellcheck disable=SC2002
cat "$tmp/text" | "$flzip" | cat >"$tmp/out.gz" || fail "cat | flzip | cat exited non-zero"
same_after_decoding "$tmp/out.gz" "$tmp/text" "stdin to stdout through pipes"
"$flzip" -b 32 - <"$tmp/random" >"$tmp/out.gz" || fail "flzip - < random exited $?"
same_after_decoding "$tmp/out.gz" "$tmp/random" "flzip - < random"
"$flzip" </dev/null >"$tmp/out.gz" || fail "flzip < /dev/null exited $?"
same_after_decoding "$tmp/out.gz" "$tmp/empty" "flzip < /dev/null"
# A pipe and a file of the same bytes give the same output.
"$flzip" -c "$tmp/text" >"$tmp/from_file.gz"
# shellcheck disable=SC2002
cat "$tmp/text" | "$flzip" >"$tmp/from_pipe.gz"
cmp -s "$tmp/from_file.gz" "$tmp/from_pipe.gz" || fail "a pipe and a file of the same bytes give different output"

# Deterministic: the output does not depend on the worker count.
for b in 32 128; do
  "$flzip" -p 1 -b "$b" -c "$tmp/text" >"$tmp/p1.gz"
  "$flzip" -p 2 -b "$b" -c "$tmp/text" >"$tmp/p2.gz"
  "$flzip" -p 3 -b "$b" -c "$tmp/text" >"$tmp/p3.gz"
  cmp -s "$tmp/p1.gz" "$tmp/p2.gz" || fail "-b $b: -p 1 and -p 2 give different output"
  cmp -s "$tmp/p1.gz" "$tmp/p3.gz" || fail "-b $b: -p 1 and -p 3 give different output"
done
FORKLINE_WORKERS=2 "$flzip" -c "$tmp/text" >"$tmp/env2.gz"
"$flzip" -p 1 -c "$tmp/text" >"$tmp/p1.gz"
cmp -s "$tmp/p1.gz" "$tmp/env2.gz" || fail "FORKLINE_WORKERS=2 and -p 1 give different output"
# -p replaces FORKLINE_WORKERS, which is then not even parsed.
FORKLINE_WORKERS=many "$flzip" -p 2 -c "$tmp/text" >"$tmp/p2.gz" || fail "-p 2 with FORKLINE_WORKERS=many exited $?"
cmp -s "$tmp/p1.gz" "$tmp/p2.gz" || fail "-p 2 under FORKLINE_WORKERS=many gives different output"
checks=$((checks + 1))

# Compressed size: at -6 (whatever engine serves it) and with zlib at -6
# within 1% of pigz's; at -1 within 5% of pigz -1's.
if [ "$have_pigz" = 1 ]; then
  for spec in "6 101" "6 101 --engine zlib" "1 105"; do
    # shellcheck disable=SC2086  # the spec is meant to split
    set -- $spec
    level=$1 percent=$2
    shift 2
    ours=$("$flzip" -"$level" "$@" -c "$tmp/text" | wc -c)
    theirs=$(pigz -p 2 -"$level" -n -c "$tmp/text" | wc -c)
    [ $((ours * 100)) -le $((theirs * percent)) ] ||
      fail "-$level $*: size $ours is over $((percent - 100))% above pigz's $theirs"
  done
  checks=$((checks + 1))
fi

# FILE mode: writes FILE.gz, keeps FILE, refuses to overwrite without -f.
mkdir "$tmp/files"
cp "$tmp/text" "$tmp/files/log"
"$flzip" "$tmp/files/log" || fail "flzip FILE exited $?"
cmp -s "$tmp/files/log" "$tmp/text" || fail "flzip FILE changed or removed FILE"
same_after_decoding "$tmp/files/log.gz" "$tmp/text" "flzip FILE"
cp "$tmp/files/log.gz" "$tmp/files/saved.gz"
printf 'other input' >"$tmp/files/log"
if "$flzip" "$tmp/files/log" 2>"$tmp/err"; then fail "flzip overwrote an existing FILE.gz without -f"; fi
grep -q "exists" "$tmp/err" || fail "refusing to overwrite does not say why: $(cat "$tmp/err")"
cmp -s "$tmp/files/log.gz" "$tmp/files/saved.gz" || fail "a refused run changed the existing FILE.gz"
"$flzip" -f "$tmp/files/log" || fail "flzip -f FILE exited $?"
same_after_decoding "$tmp/files/log.gz" "$tmp/files/log" "flzip -f FILE"
"$flzip" -k -9 -f -- "$tmp/files/log" || fail "flzip -k -9 -f -- FILE exited $?"
same_after_decoding "$tmp/files/log.gz" "$tmp/files/log" "flzip -k -9 -f -- FILE"

# Failures: a full device, a failed write to FILE.gz, a missing input, an
# unreadable one.
status=0
"$flzip" -c "$tmp/text" >/dev/full 2>"$tmp/err" || status=$?
[ "$status" = 1 ] || fail "writing to /dev/full: exit status $status, not 1"
grep -q "No space left" "$tmp/err" || fail "writing to /dev/full does not say why: $(cat "$tmp/err")"
status=0
"$flzip" "$tmp/files/missing" 2>"$tmp/err" || status=$?
[ "$status" = 1 ] || fail "a missing input: exit status $status, not 1"
grep -q "files/missing" "$tmp/err" || fail "a missing input is not named: $(cat "$tmp/err")"
[ ! -e "$tmp/files/missing.gz" ] || fail "a missing input left missing.gz behind"
# A write that fails part way (here at the file size limit, with SIGXFSZ
# ignored so that write() returns EFBIG) names the output and removes it.
cp "$tmp/random" "$tmp/files/big"
status=0
(
  trap '' XFSZ
  ulimit -f 64
  "$flzip" "$tmp/files/big"
) 2>"$tmp/err" || status=$?
[ "$status" = 1 ] || fail "a write past the file size limit: exit status $status, not 1"
grep -q "files/big.gz: .*write" "$tmp/err" || fail "a failed write does not name the output: $(cat "$tmp/err")"
[ ! -e "$tmp/files/big.gz" ] || fail "a failed write left a partial big.gz behind"
cmp -s "$tmp/files/big" "$tmp/random" || fail "a failed run changed its input"
mkdir "$tmp/files/dir"
status=0
"$flzip" "$tmp/files/dir" 2>"$tmp/err" || status=$?
[ "$status" = 1 ] || fail "a directory as input: exit status $status, not 1"
grep -q "files/dir:" "$tmp/err" || fail "an unreadable input is not named: $(cat "$tmp/err")"
[ ! -e "$tmp/files/dir.gz" ] || fail "a failed run left a partial dir.gz behind"
checks=$((checks + 1))

# Usage: --help and -h print it and succeed; bad options print it and exit 2.
"$flzip" --help >"$tmp/help" || fail "--help exited $?"
grep -q "usage: flzip" "$tmp/help" || fail "--help does not print the usage"
grep -q "never deletes" "$tmp/help" || fail "--help does not say that FILE is kept"
"$flzip" -h | grep -q "usage: flzip" || fail "-h does not print the usage"
for bad in "-x" "-p" "-p 0" "-b 8" "-b lots" "--fast" "a b" "--engine" "--engine gzip" "--engine="; do
  status=0
  # shellcheck disable=SC2086  # the options are meant to split
  "$flzip" $bad </dev/null >/dev/null 2>"$tmp/err" || status=$?
  [ "$status" = 2 ] || fail "flzip $bad: exit status $status, not 2"
  grep -q "usage: flzip" "$tmp/err" || fail "flzip $bad does not print the usage on stderr"
done
checks=$((checks + 1))

echo "flzip_test: $checks checks passed (pigz: $([ "$have_pigz" = 1 ] && echo yes || echo no))"
