#!/usr/bin/env bash
# Region reads over loopback HTTP (nginx) vs the same store on disk vs zarr-python (fsspec HTTP), in one run.
#   tools/bench/http_bench.sh [SHAPE]      default shape 8,1420,5805 (one tissue-sized phantom stack)
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup-system.sh nginx
tools/setup-python.sh
swift build -c release --product brainmap >/dev/null
dir=$(mktemp -d)
trap 'kill $(cat "$dir/nginx.pid" 2>/dev/null) 2>/dev/null; rm -rf "$dir"' EXIT
source tools/bench/nginx.sh
.build/release/brainmap phantom "$dir/www/phantom.zarr" --shape "${1:-8,1420,5805}" >/dev/null
start_nginx "$dir/www"
.build/release/brainmap bench io --source "http://127.0.0.1:$port/phantom.zarr/raw/0" --local "$dir/www/phantom.zarr/raw/0"
