#!/usr/bin/env bash
# Region reads over loopback HTTP (nginx) vs the same store on disk vs zarr-python (fsspec HTTP), in one run.
#   tools/bench/http_bench.sh [SHAPE]      default shape 8,1420,5805 (one tissue-sized phantom stack)
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/setup-system.sh nginx
tools/setup-python.sh
swift build -c release --product brainmap >/dev/null
dir=$(mktemp -d)
chmod 755 "$dir"   # nginx workers run as an unprivileged user
trap 'kill $(cat "$dir/nginx.pid" 2>/dev/null) 2>/dev/null; rm -rf "$dir"' EXIT
.build/release/brainmap phantom "$dir/www/phantom.zarr" --shape "${1:-8,1420,5805}" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/nginx.conf" <<CONF
worker_processes 2; pid $dir/nginx.pid; error_log $dir/error.log;
events { worker_connections 512; }
http { access_log off; default_type application/octet-stream; keepalive_requests 100000;
  client_body_temp_path $dir/b; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f; uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;
  server { listen 127.0.0.1:$port; root $dir/www; location / { } } }
CONF
nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
sleep 0.5
.build/release/brainmap bench io --source "http://127.0.0.1:$port/phantom.zarr/raw/0" --local "$dir/www/phantom.zarr/raw/0"
