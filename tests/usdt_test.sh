#!/usr/bin/env bash
# tests/usdt_test.sh: the USDT probes of include/forkline/detail/probes.hpp
# are in the binaries, as .note.stapsdt entries of provider "forkline": the
# library has steal, park, unpark, submit, io_submit, io_complete,
# stage_enter and stage_exit (and spawn, from pipelines and affinity posts);
# a program that calls invoke() has spawn in its own code. Nothing is traced
# or run: the notes are what perf and bpftrace read to place the probes.
#
#   bash tests/usdt_test.sh LIBRARY PROGRAM EXPECTED
#   LIBRARY: libforkline.so (or .a); PROGRAM: a binary that calls invoke();
#   EXPECTED: 1 when the build found <sys/sdt.h> and did not set
#   FORKLINE_NO_PROBES, else 0.
#   (exit 77: skipped, no readelf, or the probes were not compiled in)
set -euo pipefail

lib=${1:?usage: usdt_test.sh LIBRARY PROGRAM EXPECTED}
prog=${2:?usage: usdt_test.sh LIBRARY PROGRAM EXPECTED}
expected=${3:?usage: usdt_test.sh LIBRARY PROGRAM EXPECTED}

if ! command -v readelf >/dev/null 2>&1; then
  echo "usdt_test: readelf (binutils) is not installed; skipping"
  exit 77
fi

fail() {
  echo "usdt_test: FAIL: $*" >&2
  exit 1
}

for f in "$lib" "$prog"; do
  [ -r "$f" ] || fail "$f does not exist or is not readable (build it first)"
done

# The probe names of provider forkline in $1, one per line, sorted, unique.
# readelf -n prints "Provider: P" then "Name: N" for each stapsdt note.
forkline_probes() {
  readelf -n "$1" | awk '
    $1 == "Provider:" { provider = $2; next }
    $1 == "Name:" && provider == "forkline" { print $2 }
    $1 == "Name:" { provider = "" }' | sort -u
}

lib_probes=$(forkline_probes "$lib")
prog_probes=$(forkline_probes "$prog")

if [ "$expected" != 1 ]; then
  if [ -z "$lib_probes" ] && [ -z "$prog_probes" ]; then
    echo "usdt_test: built without <sys/sdt.h> (install systemtap-sdt-dev) or with FORKLINE_NO_PROBES;" \
         "no probes to check; skipping"
    exit 77
  fi
  # Probes although the build did not expect them: check them all the same.
  echo "usdt_test: the build did not expect probes but found some; checking them"
fi

checks=0
for name in steal park unpark submit io_submit io_complete stage_enter stage_exit spawn; do
  grep -qx "$name" <<<"$lib_probes" ||
    fail "no forkline:$name note in $lib (readelf -n shows: $(tr '\n' ' ' <<<"$lib_probes"))"
  checks=$((checks + 1))
done
grep -qx spawn <<<"$prog_probes" ||
  fail "no forkline:spawn note in $prog, which calls invoke() (readelf -n shows: $(tr '\n' ' ' <<<"$prog_probes"))"
checks=$((checks + 1))

# Every note of ours has no semaphore: a probe costs a nop, never a load.
if readelf -n "$lib" "$prog" | awk '
    $1 == "Provider:" { provider = $2 }
    $1 == "Location:" && provider == "forkline" && $NF !~ /^0x0+$/ { bad = 1 }
    END { exit bad ? 0 : 1 }'; then
  fail "a forkline probe has a semaphore (readelf -n shows a non-zero Semaphore:)"
fi
checks=$((checks + 1))

echo "usdt_test: $checks checks passed"
