#!/usr/bin/env bash
# The one rule for a test suite that needs something this machine lacks (root, podman, the
# podman-stack tool, nginx, docker-compose ...). The suites call it when they find something missing:
#
#   scripts/test-skip.sh SUITE REASON COMMAND
#     SUITE    what is not run, e.g. "tests/compose.test.js"
#     REASON   what is missing, e.g. "docker-compose not found"
#     COMMAND  what runs the suite once it is there
#
# Off CI (an owner's laptop): says so in ONE line and exits 0, so the suite is skipped:
#   SKIPPED tests/compose.test.js: docker-compose not found; to run it: apt-get install docker-compose && node --test tests/compose.test.js
# The line goes to stderr, or, when TEST_SKIP_LOG names a file (`make test` sets it), into that
# file, and `make test` prints the lines together at its end.
#
# Under CI (CI=true, or any value but "" / false / 0) nothing may be skipped: prints FAIL with the
# same words and exits 1, so the run fails.
set -u
suite=${1:?usage: test-skip.sh SUITE REASON COMMAND}
reason=${2:?usage: test-skip.sh SUITE REASON COMMAND}
command=${3:?usage: test-skip.sh SUITE REASON COMMAND}

case ${CI:-} in
  "" | false | 0) ;;
  *)
    echo "FAIL $suite: $reason (CI=$CI: a suite that cannot run fails the run); to run it: $command" >&2
    exit 1 ;;
esac

line="SKIPPED $suite: $reason; to run it: $command"
if [ -n "${TEST_SKIP_LOG:-}" ]; then
  printf '%s\n' "$line" >> "$TEST_SKIP_LOG"
else
  printf '%s\n' "$line" >&2
fi
exit 0
