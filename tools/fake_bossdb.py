#!/usr/bin/env python3
"""A fake BossDB API on loopback, serving one Zarr array (e.g. a phantom's raw) as collection/experiment/channel.

  fake_bossdb.py ARRAY --collection C --experiment E --channel CH [--token T] [--levels 2] [--throttle-every N]

Endpoints (as api.bossdb.io): /v1/collection/C/experiment/E/, /v1/coord/FRAME/, /v1/collection/C/experiment/E/channel/CH/,
/v1/cutout/C/E/CH/RES/x0:x1/y0:y1/z0:z1/ answering Accept: application/blosc with a blosc frame of the C-order (z, y, x)
block whose typesize byte holds the bit depth (as BossDB does). Resolution r is the array strided by 2^r in y and x
(anisotropic hierarchy). With --token, requests need "Authorization: Token T" (401 otherwise); --throttle-every N
answers every Nth cutout with 429 and Retry-After. Prints "PORT <n>"; stops when stdin closes.
"""
import argparse, http.server, json, re, sys, threading
import numpy as np
from numcodecs import blosc
import zarr

args, arr = None, None
counter, lock = [0], threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if args.token and self.headers.get("Authorization") != f"Token {args.token}":
            return self.reply(401, {"detail": "Invalid token."})
        c, e, ch = args.collection, args.experiment, args.channel
        z, y, x = arr.shape
        p = self.path
        if p == f"/v1/collection/{c}/experiment/{e}/":
            return self.reply(200, {"name": e, "collection": c, "coord_frame": "phantom_frame", "num_hierarchy_levels": args.levels,
                                    "hierarchy_method": "anisotropic", "num_time_samples": 1})
        if p == "/v1/coord/phantom_frame/":
            return self.reply(200, {"name": "phantom_frame", "x_start": 0, "x_stop": x, "y_start": 0, "y_stop": y, "z_start": 0,
                                    "z_stop": z, "x_voxel_size": 1.17, "y_voxel_size": 1.17, "z_voxel_size": 1.17, "voxel_unit": "micrometers"})
        if p == f"/v1/collection/{c}/experiment/{e}/channel/{ch}/":
            return self.reply(200, {"name": ch, "type": "image", "datatype": str(arr.dtype), "base_resolution": 0})
        m = re.fullmatch(rf"/v1/cutout/{c}/{e}/{ch}/(\d+)/(\d+):(\d+)/(\d+):(\d+)/(\d+):(\d+)/", p)
        if not m:
            return self.reply(404, {"detail": "not found"})
        with lock:
            counter[0] += 1
            n = counter[0]
        if args.throttle_every and n % args.throttle_every == 0:
            return self.reply(429, {"detail": "throttled"}, extra={"Retry-After": "1"})
        r, x0, x1, y0, y1, z0, z1 = map(int, m.groups())
        s = 2 ** r
        block = np.ascontiguousarray(arr[z0:z1, y0 * s:y1 * s:s, x0 * s:x1 * s:s])
        if block.shape != (z1 - z0, y1 - y0, x1 - x0):
            return self.reply(400, {"detail": "cutout outside the coordinate frame"})
        raw = block.tobytes()
        bits = block.dtype.itemsize * 8
        buf = np.frombuffer(raw, dtype=f"V{bits}") if len(raw) % bits == 0 else np.frombuffer(raw, np.uint8)
        self.reply(200, blosc.compress(buf, b"lz4", 5, blosc.SHUFFLE), "application/blosc")


def main():
    global args, arr
    pa = argparse.ArgumentParser()
    pa.add_argument("array"); pa.add_argument("--collection", required=True); pa.add_argument("--experiment", required=True)
    pa.add_argument("--channel", required=True); pa.add_argument("--token"); pa.add_argument("--levels", type=int, default=2)
    pa.add_argument("--throttle-every", type=int, default=0); pa.add_argument("--port", type=int, default=0)
    args = pa.parse_args()
    arr = zarr.open_array(args.array, mode="r")[...]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), srv.shutdown()), daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
