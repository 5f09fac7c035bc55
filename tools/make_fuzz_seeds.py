#!/usr/bin/env python3
"""Writes the seed corpora for tools/fuzz.sh under Fixtures/fuzz/TARGET/: small real files of each format, made
with the reference libraries (zarr-python, numcodecs, tifffile, safetensors), a label map and a training state.

  make_fuzz_seeds.py [OUT]     default OUT: Fixtures/fuzz
"""
import io, json, os, sys, tempfile
import numpy as np
import numcodecs, tifffile, zarr
from safetensors.numpy import save
from zarr.codecs import Crc32cCodec, TransposeCodec, ZstdCodec

out = sys.argv[1] if len(sys.argv) > 1 else "Fixtures/fuzz"


def put(target, name, data):
    os.makedirs(f"{out}/{target}", exist_ok=True)
    with open(f"{out}/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


tmp = tempfile.mkdtemp()
a = (np.arange(2 * 16 * 16) % 251).astype("u2").reshape(2, 16, 16)
z2 = zarr.create_array(f"{tmp}/v2", shape=a.shape, chunks=(1, 8, 8), dtype="u2", zarr_format=2, compressors=numcodecs.Blosc())
z2[...] = a
put("zarray", "blosc.zarray", open(f"{tmp}/v2/.zarray").read())
put("zarray", "fortran.zarray", json.dumps({"zarr_format": 2, "shape": [3, 4], "chunks": [2, 2], "dtype": ">f8",
                                            "compressor": {"id": "zstd", "level": 1}, "fill_value": "NaN", "order": "F",
                                            "filters": None, "dimension_separator": "/"}))
z3 = zarr.create_array(f"{tmp}/v3", shape=a.shape, chunks=(1, 8, 8), shards=(2, 16, 16), dtype="u2",
                       compressors=[ZstdCodec(), Crc32cCodec()], filters=[TransposeCodec(order=(0, 2, 1))])
z3[...] = a
put("zarrjson", "sharded.json", open(f"{tmp}/v3/zarr.json").read())
put("zarrjson", "plain.json", json.dumps({"zarr_format": 3, "node_type": "array", "shape": [5], "data_type": "float32",
                              "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [2]}},
                              "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                              "fill_value": "NaN", "codecs": [{"name": "bytes", "configuration": {"endian": "big"}},
                                                              {"name": "gzip", "configuration": {"level": 1}}]}))
put("ome", "multiscales.json", json.dumps({"multiscales": [{"version": "0.4", "name": "raw", "axes": [
    {"name": "z", "type": "space"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
    "datasets": [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1, 2 ** i, 2 ** i]}]} for i in range(3)]}]}))
raw = a.tobytes()
blosc_frame = numcodecs.Blosc(cname="lz4", shuffle=1).encode(raw)
put("blosc", "lz4.bin", len(raw).to_bytes(4, "little") + blosc_frame)
put("blosc", "zstd.bin", len(raw).to_bytes(4, "little") + numcodecs.Blosc(cname="zstd", shuffle=2).encode(raw))
for cid in ["zstd", "gzip", "zlib", "lz4"]:
    put("codecs", f"{cid}.bin", numcodecs.get_codec({"id": cid}).encode(raw))
shard = open(f"{tmp}/v3/c/0/0/0", "rb").read()
# an index of 2×2×2 entries with crc32c, taken from a real shard layout: (offset, nbytes) pairs then the checksum
idx = b"".join(int(i * 10).to_bytes(8, "little") + int(10).to_bytes(8, "little") for i in range(8))
put("shardindex", "index.bin", bytes(numcodecs.CRC32C().encode(idx)))   # the index, then its crc32c
put("shardindex", "real-shard-tail.bin", shard[-(16 * 8 + 4):])
put("bossdb", "prasad.json", json.dumps({
    "experiment": {"coord_frame": "prasad_frame", "num_hierarchy_levels": 4, "hierarchy_method": "anisotropic"},
    "frame": {"x_start": 0, "x_stop": 5805, "y_start": 0, "y_stop": 1420, "z_start": 0, "z_stop": 720,
              "x_voxel_size": 1.17, "y_voxel_size": 1.17, "z_voxel_size": 1.17},
    "channel": {"name": "image", "type": "image", "datatype": "uint8"}, "res": 2}))
put("safetensors", "small.safetensors", save({"conv1.weight": np.ones((2, 3), "f4"), "fc3.bias": np.zeros(6, "f4")}))
buf = io.BytesIO()
tifffile.imwrite(buf, (np.arange(3 * 20 * 30) % 256).astype("u1").reshape(3, 20, 30))
put("tiff", "stack.tif", buf.getvalue())
buf = io.BytesIO()
tifffile.imwrite(buf, np.zeros((10, 12), "f4"))
put("tiff", "float.tif", buf.getvalue())
put("manifest", "format1.json", json.dumps({"format_version": 1, "identity": {"stride": "2", "mode": "dense"},
                                             "blocks": {"grid": [2, 2, 3]}, "model": "m.safetensors"}))
put("manifest", "format2.json", json.dumps({"format_version": 2, "identity": {"stride": "1"}, "steps": {"predict": {
    "command": "predict", "parameters": {"stride": "1"}, "generation": 1, "inputs": {}, "outputs": ["labels"],
    "directory": ".brainmap/predict-g1", "info": {"blocks_per_slice": "4"}, "complete": False, "fresh_restart": False,
    "updated": "2026-11-30T00:00:00Z", "started": 0}}, "arrays": {"labels": {"step": "predict", "generation": 1,
    "staging": None, "staging_ready": False, "dimensions": ["z", "y", "x"], "label_map": True}}}))
put("labelmap", "prasad2020.json", json.dumps({"1": "CTX", "2": "STR", "3": None, "4": "VP", "5": "ZI", "6": "WM", "7": "HYP", "8": "WM"}))
# A training state as `brainmap train` writes it: tensors, then identity and history as JSON strings in the metadata.
history = [{"epoch": e, "train_loss": 1.5 / e, "train_accuracy": 0.5, "val_loss": 1.6 / e, "val_accuracy": 0.4, "seconds": 2.0}
           for e in (1, 2)]
put("modelstate", "two-epochs.state", save({"fc3.bias": np.zeros(6, "f4"), "adam.m.fc3.bias": np.zeros(6, "f4"),
                                             "adam.v.fc3.bias": np.zeros(6, "f4")},
                                            metadata={"identity": json.dumps({"lr": "0.0001", "seed": "1"}),
                                                      "history": json.dumps(history), "adam_step": "10",
                                                      "best_epoch": "2", "best_accuracy": "0.4"}))
print("seeds written to", out)
