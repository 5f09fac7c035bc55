#!/usr/bin/env bash
# More sequences of the workflow property test than CI runs: tools/soak_workflow.sh [SEQUENCES] [FIRST_SEED].
# Each sequence is 4–7 random steps on one run (predict in shards, add slices, cleanup, factorize, cluster, --restart);
# every step's array must equal the same step run from scratch, or the step must be refused naming what is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --build-tests -c debug
BRAINMAP_WORKFLOW_SEQUENCES="${1:-200}" BRAINMAP_WORKFLOW_SEED="${2:-1000}" \
  swift test --skip-build --disable-swift-testing --filter WorkflowPropertyTests
