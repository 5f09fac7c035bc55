#!/usr/bin/env bash
# Builds brainmap (release) and runs the demo on a synthetic phantom.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-system.sh
swift build -c release --product brainmap
.build/release/brainmap demo "$@"
