#!/usr/bin/env python3
"""Zarr v2 interop cases between brainmap and the Python reference stack (zarr-python, numcodecs).

  zarr_cases.py write DIR   write arrays with zarr-python/numcodecs into DIR/py.zarr and their expected contents
                            (native byte order, C order) into DIR/expected/NAME.bin; list them in DIR/manifest.json
  zarr_cases.py write3 DIR  the same for Zarr v3 (zarr-python): blosc, sharding_indexed (index at end and start,
                            crc32c), partly written (missing inner chunks and shards), v2 key encoding, big-endian
  zarr_cases.py check DIR   read every array brainmap wrote into DIR/sw.zarr with zarr-python and compare it to
                            DIR/sw_expected/NAME.bin; print one line per case, exit 1 on any mismatch
"""
import json, os, sys, zlib
import numpy as np
import numcodecs
import zarr

DTYPES = ["|u1", "<u2", ">u2", "<u4", ">u4", "<u8", "|i1", "<i2", ">i4", "<i8", "<f4", ">f4", "<f8", ">f8"]


def data_for(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.normal(0, 1000, size=shape)
    else:
        info = np.iinfo(dt)
        a = rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), size=shape, endpoint=False)
        # keep some long runs so compressors have something to do
        a[..., : shape[-1] // 3] = a[..., :1]
    return a.astype(dt)


def write_raw_v2(path, arr, chunks, compressor, order, sep, fill):
    """A minimal independent Zarr v2 writer on numcodecs: full-size edge chunks, chosen order and separator."""
    os.makedirs(path, exist_ok=True)
    meta = {"zarr_format": 2, "shape": list(arr.shape), "chunks": list(chunks), "dtype": arr.dtype.str,
            "compressor": compressor.get_config() if compressor else None, "fill_value": fill, "order": order,
            "filters": None, "dimension_separator": sep}
    with open(os.path.join(path, ".zarray"), "w") as f:
        json.dump(meta, f)
    grid = [-(-s // c) for s in zip(arr.shape, chunks) for s, c in [s]]
    for idx in np.ndindex(*grid):
        sl = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, chunks, arr.shape))
        block = np.zeros(chunks, dtype=arr.dtype)
        if fill not in (None, 0):
            block[...] = np.nan if fill == "NaN" else fill
        part = arr[sl]
        block[tuple(slice(0, p) for p in part.shape)] = part
        if idx == tuple(g - 1 for g in grid) and fill is not None and len(grid) > 1:
            continue  # leave the last chunk missing: it must read as fill_value
        raw = block.tobytes(order=order)
        data = compressor.encode(raw) if compressor else raw
        key = sep.join(map(str, idx))
        kp = os.path.join(path, key)
        os.makedirs(os.path.dirname(kp), exist_ok=True)
        with open(kp, "wb") as f:
            f.write(data)
    expected = arr.copy()
    if fill is not None and len(grid) > 1:
        last = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip([g - 1 for g in grid], chunks, arr.shape))
        expected[last] = np.nan if fill == "NaN" else fill
    return expected


def write(d):
    os.makedirs(os.path.join(d, "expected"), exist_ok=True)
    cases = []
    shape, chunks = (5, 37, 29), (2, 16, 10)

    def add(name, expected, box):
        expected.astype(expected.dtype.newbyteorder("=")).tofile(os.path.join(d, "expected", name + ".bin"))
        cases.append({"name": name, "dtype": expected.dtype.str, "shape": list(expected.shape), "box": box})

    box = [[1, 4], [3, 35], [5, 22]]
    # every dtype × byte order, blosc lz4 with shuffle, through zarr-python itself
    for i, dt in enumerate(DTYPES):
        a = data_for(dt, shape, i)
        name = "zp_" + dt.replace("<", "le_").replace(">", "be_").replace("|", "")
        z = zarr.create_array(store=os.path.join(d, "py.zarr", name), shape=shape, chunks=chunks, dtype=a.dtype,
                              compressors=numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE),
                              zarr_format=2, fill_value=0, overwrite=True)
        z[...] = a
        add(name, a, box)
    # every blosc compressor × shuffle mode × blocksize, numcodecs directly
    for cname in ["lz4", "lz4hc", "zstd", "blosclz", "zlib"]:
        for shuffle in [0, 1, 2, -1]:
            for dt in ["<u2", "|u1", "<f4"]:
                name = f"nc_{cname}_s{shuffle + 1}_{dt[1:]}"
                a = data_for(dt, shape, zlib.crc32(name.encode()) % 1000)
                comp = numcodecs.Blosc(cname=cname, clevel=7 if cname != "zlib" else 3, shuffle=shuffle,
                                       blocksize=0 if shuffle != 1 else 256)
                exp = write_raw_v2(os.path.join(d, "py.zarr", name), a, chunks, comp, "C", ".", None)
                add(name, exp, box)
    # separators, F order, no compressor, fill values (incl. NaN and a missing last chunk)
    for sep in [".", "/"]:
        for order in ["C", "F"]:
            for comp in [None, numcodecs.Blosc(cname="zstd", clevel=3, shuffle=2)]:
                name = f"layout_{'slash' if sep == '/' else 'dot'}_{order}_{'raw' if comp is None else 'blosc'}"
                a = data_for("<i2", shape, 7)
                exp = write_raw_v2(os.path.join(d, "py.zarr", name), a, chunks, comp, order, sep, 0)
                add(name, exp, box)
    for fill, dt in [(42, "<u2"), ("NaN", "<f4"), (-7, ">i4"), (2.5, ">f8")]:
        name = f"fill_{str(fill).replace('.', 'p').replace('-', 'm')}_{dt[1:]}"
        a = data_for(dt, shape, 3)
        exp = write_raw_v2(os.path.join(d, "py.zarr", name), a, chunks, numcodecs.Blosc(cname="lz4"), "C", ".", fill)
        add(name, exp, box)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print(f"wrote {len(cases)} cases")


def write3(d):
    import zarr.codecs as zc
    os.makedirs(os.path.join(d, "expected"), exist_ok=True)
    cases = []
    shape = (5, 70, 90)
    box = [[1, 5], [3, 61], [7, 88]]
    blosc = zc.BloscCodec(cname="zstd", clevel=3, shuffle=zc.BloscShuffle.bitshuffle)

    def add(name, expected):
        expected.astype(expected.dtype.newbyteorder("=")).tofile(os.path.join(d, "expected", name + ".bin"))
        cases.append({"name": name, "dtype": expected.dtype.str, "shape": list(expected.shape), "box": box})

    specs = [
        ("plain_u2", "<u2", dict(chunks=(2, 32, 32), compressors=blosc)),
        ("plain_u1_nocomp", "|u1", dict(chunks=(3, 16, 40), compressors=None)),
        ("plain_be_i4", ">i4", dict(chunks=(2, 32, 32), compressors=blosc, serializer=zc.BytesCodec(endian="big"))),
        ("shard_end_u2", "<u2", dict(shards=(4, 64, 64), chunks=(2, 16, 32), compressors=blosc)),
        ("shard_start_f4", "<f4", dict(shards=(2, 32, 64), chunks=(1, 16, 16), compressors=blosc)),
        ("plain_v2keys_u1", "|u1", dict(chunks=(1, 32, 32), compressors=blosc, chunk_key_encoding={"name": "v2", "separator": "."})),
    ]
    for i, (name, dt, kw) in enumerate(specs):
        a = data_for(dt, shape, 100 + i)
        fill = 5 if dt != "<f4" else float("nan")
        z = zarr.create_array(store=os.path.join(d, "py3.zarr", name), shape=shape, dtype=np.dtype(dt), zarr_format=3,
                              fill_value=fill, overwrite=True, **kw)
        if name == "shard_start_f4":
            # zarr-python writes the index at the end by default; rewrite metadata-compatible shards with index first
            z = zarr.create_array(store=os.path.join(d, "py3.zarr", name), shape=shape, dtype=np.dtype(dt), zarr_format=3,
                                  fill_value=fill, overwrite=True, chunks=(2, 32, 64), compressors=None,
                                  serializer=zc.ShardingCodec(chunk_shape=(1, 16, 16), codecs=[zc.BytesCodec(), blosc],
                                                              index_location=zc.sharding.ShardingCodecIndexLocation.start))
        # leave part unwritten: whole shards and inner chunks missing
        exp = np.full(shape, fill, dtype=np.dtype(dt))
        region = (slice(0, 4), slice(0, 50), slice(0, 90))
        z[region] = a[region]
        exp[region] = a[region]
        add(name, exp)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print(f"wrote {len(cases)} v3 cases")


def check(d):
    bad = 0
    manifest = json.load(open(os.path.join(d, "sw_manifest.json")))
    for c in manifest:
        z = zarr.open_array(os.path.join(d, "sw.zarr", c["name"]), mode="r")
        got = z[...]
        exp = np.fromfile(os.path.join(d, "sw_expected", c["name"] + ".bin"), dtype=np.dtype(c["dtype"]).newbyteorder("="))
        exp = exp.reshape(c["shape"])
        ok = got.shape == exp.shape and np.array_equal(got.astype(exp.dtype), exp, equal_nan=exp.dtype.kind == "f") \
            and z.dtype == np.dtype(c["dtype"])
        print(("ok   " if ok else "FAIL ") + c["name"] + ("" if ok else f" got dtype {z.dtype} shape {got.shape}"))
        bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    {"write": write, "write3": write3, "check": check}[sys.argv[1]](sys.argv[2])
