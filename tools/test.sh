#!/usr/bin/env bash
# The whole test suite: installs system libraries and the Python reference tools, runs swift test (XCTest), then
# every fuzz target on a reproducible smoke run (tools/fuzz.sh with FUZZ_RUNS: BRAINMAP_FUZZ_RUNS inputs from seed
# 1, default 50000 each — 12 targets; a smoke run, tools/fuzz.sh SECONDS fuzzes for real; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-system.sh nginx chromium slurm-wlm munge   # nginx: remote-store tests; chromium: the report in a browser; Slurm: the cluster tests (tools/slurm.sh)
tools/setup-python.sh
swift build --build-tests -c debug
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift test --skip-build --disable-swift-testing "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
fuzz_rc=0
if [ "${BRAINMAP_FUZZ_RUNS:-50000}" != 0 ] && [ $# -eq 0 ]; then
  FUZZ_RUNS="${BRAINMAP_FUZZ_RUNS:-50000}" tools/fuzz.sh 0; fuzz_rc=$?
fi
set -e
# A plain closing line: "N passed, N skipped, N failed" from XCTest's last summary
# ("Executed 91 tests, with 1 test skipped and 0 failures …").
summary=$(grep -E "Executed [0-9]+ tests?, with " "$log" | tail -1)
if [ -n "$summary" ]; then
  n=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<< "$summary")
  f=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<< "$summary")
  k=0; grep -qE "[0-9]+ tests? skipped" <<< "$summary" && k=$(sed -E 's/.*with ([0-9]+) tests? skipped.*/\1/' <<< "$summary")
  echo "tests: $((n - f - k)) passed, $k skipped, $f failed"
fi
[ "$fuzz_rc" -eq 0 ] || echo "fuzzing found a crash (see above)"
[ "$rc" -ne 0 ] && exit "$rc"
exit "$fuzz_rc"
