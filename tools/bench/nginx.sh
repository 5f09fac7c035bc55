# Sourced by the bench scripts: start_nginx ROOT starts nginx on a free loopback port serving ROOT (in the
# foreground of its own process group; stopped by the caller's trap through $dir/nginx.pid) and sets $port.
# Needs $dir, a scratch directory the caller removes.
start_nginx() {
  chmod 755 "$dir"   # nginx workers run as an unprivileged user
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/nginx.conf" <<CONF
worker_processes 1; pid $dir/nginx.pid; error_log $dir/error.log;
events { worker_connections 512; }
http { access_log off; default_type application/octet-stream; keepalive_requests 100000;
  client_body_temp_path $dir/b; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f; uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;
  server { listen 127.0.0.1:$port; root $1; location / { } } }
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"
  sleep 0.5
}
