#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for testing brainmap's remote stores on loopback.

  fault_proxy.py UPSTREAM_URL [--port 0] [--faults 503,429,reset,truncate,stall,gzip] [--per-path 2]
                 [--forbid SUBSTRING] [--always-truncate SUBSTRING] [--stall-seconds 4]
                 [--forbid-while PATH] [--latency SECONDS]

Each path's first --per-path requests get a fault, chosen deterministically from --faults by the path and the
request number; later requests pass through (so a client that retries gets exactly the upstream bytes). Paths
containing --forbid always get 403 (while the file --forbid-while names exists, if given: a permanent fault
that an operator can lift); every response waits --latency seconds first (a distant server); paths containing --always-truncate always get a truncated body. Range headers
are forwarded. Prints "PORT <n>" once listening; exits when stdin closes or after --lifetime seconds.
"""
import argparse, gzip, http.server, os, socket, sys, threading, time, urllib.request, urllib.error, zlib

args = None
counts, lock = {}, threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def upstream(self):
        req = urllib.request.Request(args.upstream.rstrip("/") + self.path)
        if "Range" in self.headers:
            req.add_header("Range", self.headers["Range"])
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def send(self, status, body, headers=None, declared=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if declared is None else declared))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            n = counts.get(self.path, 0)
            counts[self.path] = n + 1
        if args.latency > 0:
            time.sleep(args.latency)
        if args.forbid and args.forbid in self.path and (not args.forbid_while or os.path.exists(args.forbid_while)):
            return self.send(403, b"forbidden")
        status, body, hdrs = self.upstream()
        passthrough = {k: v for k, v in hdrs.items() if k.lower() in ("content-range", "content-type")}
        if args.always_truncate and args.always_truncate in self.path and len(body) > 1:
            self.send(status, body[: len(body) // 2], passthrough, declared=len(body))
            self.close_connection = True
            return
        faults = args.faults.split(",") if args.faults else []
        if n < args.per_path and faults:
            fault = faults[(zlib.crc32(self.path.encode()) + n) % len(faults)]
            if fault in ("503", "500", "502"):
                return self.send(int(fault), b"try again")
            if fault == "429":
                return self.send(429, b"slow down", {"Retry-After": "1"})
            if fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.close_connection = True
                self.connection.close()
                return
            if fault == "truncate" and len(body) > 1:
                self.send(status, body[: len(body) // 2], passthrough, declared=len(body))
                self.close_connection = True
                return
            if fault == "stall":
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:1]); self.wfile.flush()
                time.sleep(args.stall_seconds)
                self.close_connection = True
                return
            if fault == "gzip" and status == 200:
                return self.send(status, gzip.compress(body), {**passthrough, "Content-Encoding": "gzip"})
        self.send(status, body, passthrough)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("upstream"); p.add_argument("--port", type=int, default=0)
    p.add_argument("--faults", default="503,429,reset,truncate,stall,gzip"); p.add_argument("--per-path", type=int, default=2)
    p.add_argument("--forbid"); p.add_argument("--always-truncate"); p.add_argument("--stall-seconds", type=float, default=4)
    p.add_argument("--lifetime", type=float, default=600)
    p.add_argument("--forbid-while"); p.add_argument("--latency", type=float, default=0)
    args = p.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    # Stop when the parent closes our stdin, or after the lifetime: no orphan servers.
    threading.Thread(target=lambda: (sys.stdin.read(), srv.shutdown()), daemon=True).start()
    timer = threading.Timer(args.lifetime, srv.shutdown)
    timer.daemon = True
    timer.start()
    srv.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
