#!/usr/bin/env bash
# std::exit(3) called from a task ends the process with status 3: the runtime
# whose worker runs the exit handlers (the default one, or any static one)
# must not abort in its destructor, nor hang.
# Usage: exit_test.sh EXIT_CHILD
set -u
child=$1
fail=0
for mode in parallel-for static submit; do
  for round in 1 2 3 4 5; do
    err=$(timeout 60 "$child" "$mode" 2>&1 >/dev/null)
    status=$?
    if [ "$status" -ne 3 ]; then
      echo "FAIL: exit_child $mode (round $round) ended with status $status, not 3: $err"
      fail=1
      break
    fi
  done
  [ $fail -eq 0 ] && echo "ok: exit_child $mode ends with status 3 (5 rounds)"
done
exit $fail
