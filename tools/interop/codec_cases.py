#!/usr/bin/env python3
"""Codec interop cases between brainmap and zarr-python 3 / numcodecs.

  codec_cases.py write DIR   arrays as users write them: zarr-python 3 defaults (v2 and v3), every v2 compressor
                             (zstd, gzip, zlib, lz4, blosc), v3 gzip, zstd+crc32c, transpose, sharding+zstd,
                             big-endian. Arrays under DIR/py/NAME, expected contents (native order, C order) in
                             DIR/expected/NAME.bin, and DIR/manifest.json listing {name, dtype, shape}.
  codec_cases.py check DIR   read every array brainmap wrote under DIR/sw/NAME (listed in DIR/sw_manifest.json) with
                             zarr-python and compare with DIR/sw_expected/NAME.bin; one line per case, exit 1 on a mismatch
"""
import json, os, sys
import numpy as np
import numcodecs
import zarr
from zarr.codecs import BytesCodec, Crc32cCodec, GzipCodec, TransposeCodec, ZstdCodec


def data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3000, size=shape)
    a[..., : shape[-1] // 3] = 7   # runs, so compressors have something to do
    return a.astype(dtype)


def write(d):
    os.makedirs(f"{d}/expected", exist_ok=True)
    manifest = []
    shape, chunks = (3, 50, 70), (2, 16, 32)

    def add(name, arr, **kw):
        z = zarr.create_array(store=f"{d}/py/{name}", shape=arr.shape, dtype=arr.dtype, chunks=chunks, **kw)
        z[...] = arr
        arr.astype(arr.dtype.newbyteorder("=")).tofile(f"{d}/expected/{name}.bin")
        manifest.append({"name": name, "dtype": arr.dtype.str, "shape": list(arr.shape)})

    u2 = data("<u2", shape, 1)
    add("v3-default", u2)                                   # [bytes, zstd]
    add("v2-default", u2, zarr_format=2)                   # compressor zstd
    for i, comp in enumerate([numcodecs.Zstd(level=3), numcodecs.GZip(level=5), numcodecs.Zlib(level=4),
                              numcodecs.LZ4(acceleration=1), numcodecs.Blosc(cname="zstd", clevel=3, shuffle=2)]):
        add(f"v2-{comp.codec_id}", data("<u2", shape, 10 + i), zarr_format=2, compressors=comp)
    add("v2-zstd-u1", data("|u1", shape, 20), zarr_format=2, compressors=numcodecs.Zstd(level=1))
    add("v3-gzip", data("<u2", shape, 30), compressors=GzipCodec(level=6))
    add("v3-zstd-crc32c", data("<u2", shape, 31), compressors=[ZstdCodec(level=2, checksum=True), Crc32cCodec()])
    add("v3-transpose", data("<u2", shape, 32), filters=[TransposeCodec(order=(2, 0, 1))], compressors=ZstdCodec())
    add("v3-sharded-zstd", data("<u2", shape, 33), shards=(2, 32, 64), compressors=ZstdCodec(level=1))
    add("v3-big-endian", data(">u2", shape, 34), serializer=BytesCodec(endian="big"), compressors=ZstdCodec())
    add("v3-f4-gzip", data("<f4", shape, 35), compressors=GzipCodec(level=1))
    with open(f"{d}/manifest.json", "w") as f:
        json.dump(manifest, f)


def check(d):
    bad = 0
    for case in json.load(open(f"{d}/sw_manifest.json")):
        name = case["name"]
        z = zarr.open_array(f"{d}/sw/{name}", mode="r")
        want = np.fromfile(f"{d}/sw_expected/{name}.bin", dtype=np.dtype(case["dtype"]).newbyteorder("=")).reshape(case["shape"])
        got = z[...]
        ok = got.shape == want.shape and np.array_equal(got, want)
        codecs = z.metadata.codecs if z.metadata.zarr_format == 3 else [z.metadata.compressor]
        print(f"{'ok' if ok else 'MISMATCH'} {name} {[type(c).__name__ for c in codecs]}")
        bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
