#!/usr/bin/env bash
# The whole test suite: installs system libraries and the Python reference tools, then runs swift test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-system.sh
tools/setup-python.sh
swift build --build-tests -c debug
swift test --skip-build "$@"
