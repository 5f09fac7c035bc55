#!/usr/bin/env bash
# Creates .venv with the independent reference implementations the tests compare against (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
req=tools/requirements-test.txt
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
stamp=.venv/.requirements.sha
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
