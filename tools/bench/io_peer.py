#!/usr/bin/env python3
"""Peer measurements for `brainmap bench io`, run in the same session on the same bytes.

  io_peer.py decode DIR SECONDS        decode every DIR/NAME-I.ID chunk with numcodecs' codec ID (blosc, zstd, gzip,
                                       zlib, lz4) on one thread, repeatedly for SECONDS; print "decode NAME MBPS"
                                       (decoded MB/s) per NAME
  io_peer.py region ARRAY BOXES SECONDS  read each box "z0:z1,y0:y1,x0:x1;..." with zarr-python; print "region MBPS"
"""
import glob, os, sys, time
import numcodecs
from numcodecs import blosc
import zarr


def decode(d, seconds):
    blosc.use_threads = False
    blosc.set_nthreads(1)
    groups = {}
    for p in sorted(glob.glob(os.path.join(d, "*-*.*"))):
        name, ext = os.path.basename(p).split("-")[0], p.rsplit(".", 1)[1]
        groups.setdefault((name, ext), []).append(open(p, "rb").read())
    for (name, ext), chunks in groups.items():
        codec = numcodecs.get_codec({"id": ext})
        n, t0, total = 0, time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            for c in chunks:
                total += len(codec.decode(c))
            n += 1
        print(f"decode {name} {total / (time.perf_counter() - t0) / 1e6:.1f}")


def region(path, boxes, seconds):
    a = zarr.open_array(path, mode="r")
    bs = [tuple(slice(*map(int, r.split(":"))) for r in b.split(",")) for b in boxes.split(";")]
    total, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for b in bs:
            total += a[b].nbytes
    print(f"region {total / (time.perf_counter() - t0) / 1e6:.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "decode":
        decode(sys.argv[2], float(sys.argv[3]))
    else:
        region(sys.argv[2], sys.argv[3], float(sys.argv[4]))
