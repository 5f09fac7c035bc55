#!/usr/bin/env bash
# predict vs the engine alone on a full-size phantom slice, and predict over loopback HTTP with 100 ms added to
# every response (nginx behind tools/fault_proxy.py --latency 0.1), interleaved rounds, medians.
#   tools/bench/predict_bench.sh [ROUNDS] [STRIDE]      defaults: 3 rounds, stride 2
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup-system.sh nginx
tools/setup-python.sh
swift build -c release --product brainmap >/dev/null
dir=$(mktemp -d)
proxy_pid=""
trap 'kill $(cat "$dir/nginx.pid" 2>/dev/null) $proxy_pid 2>/dev/null; rm -rf "$dir"' EXIT
source tools/bench/nginx.sh
.build/release/brainmap phantom "$dir/bench.zarr" --shape 1,1420,5805 --seed 1 >/dev/null
start_nginx "$dir"
exec 3< <(sleep 100000)   # the proxy stops when its stdin closes: keep it open while we run
.venv/bin/python tools/fault_proxy.py "http://127.0.0.1:$port" --faults "" --latency 0.1 --lifetime 7200 <&3 > "$dir/proxy.out" &
proxy_pid=$!
for _ in $(seq 50); do grep -q PORT "$dir/proxy.out" 2>/dev/null && break; sleep 0.1; done
pport=$(awk '/PORT/ {print $2}' "$dir/proxy.out")
.build/release/brainmap bench predict --scratch "$dir" --rounds "${1:-3}" --stride "${2:-2}" \
  --remote "http://127.0.0.1:$pport/bench.zarr/raw"
