#!/usr/bin/env bash
# tests/consumer/run.sh: forkline as the people who link it get it.
#
#   1. configures this source tree with --prefix in a temporary directory,
#      builds it and runs `meson install`; checks the installed files, the
#      soname and forkline.pc;
#   2. builds tests/consumer/main.cpp against that installation with meson
#      (dependency('forkline') through forkline.pc), CMake
#      (find_package(forkline CONFIG)) and `c++ $(pkg-config ...)`, and
#      statically with `pkg-config --static` and with CMake's
#      forkline_USE_STATIC_LIBS; runs each and checks what it prints;
#   3. builds it once more with forkline in subprojects/, not installed, and
#      checks that the subproject brought only the library.
#
#   bash tests/consumer/run.sh     (CXX chooses the compiler; exit 77: skipped,
#                                   cmake or pkg-config missing, unless CI=true)
#
# Why its own `meson setup --prefix` rather than `meson install --destdir` of
# an existing build: a DESTDIR copy keeps that build's prefix in forkline.pc,
# which pkg-config could only be pointed around with PKG_CONFIG_SYSROOT_DIR,
# and that also rewrites the paths of hwloc's, libnuma's and liburing's .pc
# files; users run setup --prefix and install, so this does too, whatever
# state the developer's build directories are in. The library builds in
# well under a minute.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

missing=()
for tool in cmake pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "consumer: FAIL: ${missing[*]} not installed (scripts/setup installs them)" >&2
    exit 1
  fi
  echo "consumer: ${missing[*]} not installed; skipping (scripts/setup installs them)"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cxx=${CXX:-c++}

fail() {
  echo "consumer: FAIL: $*" >&2
  exit 1
}

# Runs a command with its output in a log that is shown only if it fails.
quietly() {  # what, then the command
  local what=$1
  shift
  if ! "$@" >"$tmp/log" 2>&1; then
    tail -n 60 "$tmp/log" >&2
    fail "$what: $*"
  fi
}

needed_libraries() {  # the DT_NEEDED entries of an executable or library
  readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

# --- 1. install -------------------------------------------------------------

quietly "configure the install build" \
  meson setup "$tmp/build" "$root" --prefix "$prefix" -Dtests=false -Dbenchmarks=false
quietly "build and install" meson install -C "$tmp/build"

version=$(meson introspect "$tmp/build" --projectinfo |
          python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
IFS=. read -r major minor _ <<<"$version"
pc=$(find "$prefix" -name forkline.pc)
[ -n "$pc" ] || fail "no forkline.pc under the prefix"
libdir=$(dirname "$(dirname "$pc")")

for f in bin/forkline-probe bin/flzip bin/logstat \
         include/forkline/forkline.hpp include/forkline/version.hpp include/forkline/detail/job.hpp \
         "${libdir#"$prefix"/}/libforkline.so.$version" "${libdir#"$prefix"/}/libforkline.so" \
         "${libdir#"$prefix"/}/libforkline.a" \
         "${libdir#"$prefix"/}/cmake/forkline/forklineConfig.cmake" \
         "${libdir#"$prefix"/}/cmake/forkline/forklineConfigVersion.cmake"; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
for f in include/forkline/meson.build include/forkline/version.hpp.in; do
  [ ! -e "$prefix/$f" ] || fail "installed, but only the build needs it: $f"
done
soname=$(readelf -d "$libdir/libforkline.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libforkline.so.0" ] || fail "soname is '$soname', want libforkline.so.0"
[ "$(readlink "$libdir/libforkline.so.0")" = "libforkline.so.$version" ] ||
  fail "libforkline.so.0 does not point at libforkline.so.$version"
grep -qx "#define FORKLINE_VERSION_STRING \"$version\"" "$prefix/include/forkline/version.hpp" ||
  fail "installed version.hpp does not say $version"
LD_LIBRARY_PATH=$libdir "$prefix/bin/forkline-probe" --help >/dev/null ||
  fail "installed forkline-probe --help"
echo "consumer: installed forkline $version: $(find "$prefix" -type f | wc -l) files, soname $soname"

export PKG_CONFIG_PATH=$libdir/pkgconfig
[ "$(pkg-config --modversion forkline)" = "$version" ] || fail "pkg-config --modversion forkline"
requires=$(pkg-config --print-requires-private forkline | tr '\n' ' ')
for dep in hwloc numa liburing; do
  [[ " $requires" == *" $dep "* ]] || fail "forkline.pc: Requires.private lacks $dep ($requires)"
done
flags=$(pkg-config --cflags --libs forkline)
echo "consumer: forkline.pc: ${flags% } (Requires.private: ${requires% })"

# --- 2. build against the installation -------------------------------------

want="forkline $version fib(20)=6765 squares=332833500"

check_program() {  # what, executable, static or shared
  local what=$1 exe=$2 link=$3 out
  if ! out=$(LD_LIBRARY_PATH=$libdir "$exe" 2>&1); then
    fail "$what: the program failed: $out"
  fi
  [ "$out" = "$want" ] || fail "$what: printed '$out', want '$want'"
  if [ "$link" = static ]; then
    ! needed_libraries "$exe" | grep -q '^libforkline' ||
      fail "$what: linked against the shared library"
  else
    needed_libraries "$exe" | grep -qx libforkline.so.0 || fail "$what: does not need libforkline.so.0"
  fi
  echo "consumer: $what: ok"
}

quietly "meson consumer: setup" \
  meson setup "$tmp/meson" "$here" --wrap-mode=nofallback
quietly "meson consumer: build" ninja -C "$tmp/meson"
check_program "meson, dependency('forkline')" "$tmp/meson/consumer" shared

for link in shared static; do
  use_static=OFF
  [ "$link" = static ] && use_static=ON
  quietly "CMake consumer ($link): configure" \
    cmake -G Ninja -S "$here" -B "$tmp/cmake-$link" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_PREFIX_PATH="$prefix" -DFORKLINE_WANT_VERSION="$major.$minor" \
      -Dforkline_USE_STATIC_LIBS=$use_static
  grep -q "forkline $version from" "$tmp/log" || fail "CMake consumer ($link): found another forkline"
  quietly "CMake consumer ($link): build" cmake --build "$tmp/cmake-$link"
  check_program "CMake, find_package(forkline $major.$minor CONFIG), $link" "$tmp/cmake-$link/consumer" "$link"
done
# Before 1.0 a minor version may break the API: 0.1 must not satisfy 0.2.
if cmake -G Ninja -S "$here" -B "$tmp/cmake-newer" -DCMAKE_CXX_COMPILER="$cxx" \
     -DCMAKE_PREFIX_PATH="$prefix" -DFORKLINE_WANT_VERSION="$major.$((minor + 1))" >"$tmp/log" 2>&1; then
  fail "CMake: find_package(forkline $major.$((minor + 1))) accepted $version"
fi
grep -q 'compatible with requested version' "$tmp/log" ||
  { tail -n 20 "$tmp/log" >&2; fail "CMake: find_package(forkline $major.$((minor + 1))) failed for another reason"; }
echo "consumer: CMake, find_package(forkline $major.$((minor + 1))) refuses $version: ok"

# shellcheck disable=SC2046  # pkg-config's output is a list of words
quietly "c++ with pkg-config" \
  "$cxx" -std=c++20 "$here/main.cpp" -o "$tmp/plain" $(pkg-config --cflags --libs forkline)
check_program "c++ \$(pkg-config --cflags --libs forkline)" "$tmp/plain" shared

# pkg-config --static also lists what the dependencies' own static archives
# need (hwloc's -ludev): without those development files (libudev-dev, which
# scripts/setup installs) the link cannot work, whatever forkline.pc says.
unlinkable=()
for flag in $(pkg-config --static --libs-only-l forkline); do
  name=${flag#-l}
  [ "$name" != forkline ] || continue
  if [ "$("$cxx" -print-file-name="lib$name.so")" = "lib$name.so" ] &&
     [ "$("$cxx" -print-file-name="lib$name.a")" = "lib$name.a" ]; then
    unlinkable+=("-l$name")
  fi
done
if [ ${#unlinkable[@]} -gt 0 ]; then
  [ "${CI:-}" != "true" ] || fail "pkg-config --static: the linker has no ${unlinkable[*]} (scripts/setup installs them)"
  echo "consumer: c++ \$(pkg-config --static ...): skipped, the linker has no ${unlinkable[*]}"
else
  # -l:libforkline.a takes the archive where -lforkline would take the .so.
  static_libs=$(pkg-config --static --libs forkline | sed 's/-lforkline\b/-l:libforkline.a/')
  # shellcheck disable=SC2046,SC2086
  quietly "c++ with pkg-config --static" \
    "$cxx" -std=c++20 "$here/main.cpp" -o "$tmp/static" $(pkg-config --cflags forkline) $static_libs
  check_program "c++ \$(pkg-config --static ...) with libforkline.a" "$tmp/static" static
fi

# --- 2b. the MPI layer, where forkline was built with MPI ----------------------
if [ -e "$prefix/include/forkline/mpi.hpp" ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
  quietly "CMake MPI consumer: configure" \
    cmake -G Ninja -S "$here/mpi" -B "$tmp/cmake-mpi" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix"
  quietly "CMake MPI consumer: build" cmake --build "$tmp/cmake-mpi"
  # shellcheck disable=SC2046  # pkg-config's output is a list of words
  quietly "c++ with pkg-config forkline-mpi" \
    "$cxx" -std=c++20 "$here/mpi/main.cpp" -o "$tmp/plain-mpi" $(pkg-config --cflags --libs forkline-mpi ompi-cxx)
  for exe in "$tmp/cmake-mpi/mpi_consumer" "$tmp/plain-mpi"; do
    out=$(LD_LIBRARY_PATH="$libdir" timeout 60 mpirun --oversubscribe -np 2 "$exe" 2>&1) ||
      fail "MPI consumer $exe under mpirun -np 2: $out"
    echo "$out" | grep -q "^forkline-mpi consumer: ranks=2 sum=1 level=MPI_THREAD_" ||
      fail "MPI consumer $exe printed: $out"
  done
  echo "consumer: CMake find_package(forkline COMPONENTS mpi) and pkg-config forkline-mpi, run under mpirun -np 2: ok"
elif [ "${CI:-}" = "true" ]; then
  fail "forkline was installed without its MPI layer (scripts/setup installs Open MPI)"
fi

# --- 3. a meson subproject, not installed -----------------------------------

mkdir -p "$tmp/parent/subprojects"
cp "$here/meson.build" "$here/main.cpp" "$tmp/parent/"
ln -s "$root" "$tmp/parent/subprojects/forkline"
unset PKG_CONFIG_PATH
quietly "subproject: setup" meson setup "$tmp/parent-build" "$tmp/parent" --wrap-mode=forcefallback
quietly "subproject: build" ninja -C "$tmp/parent-build"
out=$("$tmp/parent-build/consumer" 2>&1) || fail "subproject: the program failed: $out"
[ "$out" = "$want" ] || fail "subproject: printed '$out', want '$want'"
# Only the library and the consumer: no forkline tests, benchmarks or tools.
targets=$(meson introspect "$tmp/parent-build" --targets |
          python3 -c 'import json, sys; print(" ".join(sorted({t["name"] for t in json.load(sys.stdin)})))')
[ "$targets" = "consumer forkline" ] || fail "subproject: built targets '$targets', want 'consumer forkline'"
tests=$(meson introspect "$tmp/parent-build" --tests | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
[ "$tests" = 0 ] || fail "subproject: the parent's meson test would run $tests forkline tests"
echo "consumer: meson subproject (fallback, not installed): ok"

echo "consumer: all checks passed"
