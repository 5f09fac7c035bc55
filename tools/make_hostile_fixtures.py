#!/usr/bin/env python3
"""Writes the hostile-metadata fixtures of issue 17 under Fixtures/hostile/ (small, committed):

  fill/NAME/.zarray (v2) and fill/NAME/zarr.json (v3): 2×4×4 arrays with no chunk stored (every read is the fill),
      whose fill_value the dtype cannot hold (refused) or can (accepted); NAME says dtype and fill. zarr-python
      writes neither kind of bad one, so the JSON is written by hand; FillValueTests checks zarr-python refuses
      exactly the ones brainmap refuses.
  empty.zarr/raw: a u1 array with a 0-length y axis (export-tiff must refuse it, not write a TIFF of no pages).

  make_hostile_fixtures.py [OUT]     default OUT: Fixtures/hostile
"""
import json, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "Fixtures/hostile"

# (name, numpy dtype, fill) — refused: the dtype cannot hold the fill.
REFUSED = [("u1-nan", "|u1", "NaN"), ("u1-infinity", "|u1", "Infinity"), ("i2-minus-infinity", "<i2", "-Infinity"),
           ("u1-1e300", "|u1", 1e300), ("u1-minus1", "|u1", -1), ("u1-2.5", "|u1", 2.5), ("u1-256", "|u1", 256),
           ("u2-nan", "<u2", "NaN"), ("i8-1e19", "<i8", 1e19), ("u8-minus1", "<u8", -1)]
# accepted, with the value every element reads as.
ACCEPTED = [("u1-2.0", "|u1", 2.0), ("i2-minus1", "<i2", -1), ("u1-255", "|u1", 255), ("f4-nan", "<f4", "NaN")]
V3_NAMES = {"|u1": "uint8", "<u2": "uint16", "<i2": "int16", "<i8": "int64", "<u8": "uint64", "<f4": "float32"}


def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


for name, dt, fill in REFUSED + ACCEPTED:
    write(f"{out}/fill/v2-{name}/.zarray", {"zarr_format": 2, "shape": [2, 4, 4], "chunks": [1, 4, 4], "dtype": dt,
                                           "compressor": None, "fill_value": fill, "order": "C", "filters": None})
    write(f"{out}/fill/v3-{name}/zarr.json", {
        "zarr_format": 3, "node_type": "array", "shape": [2, 4, 4], "data_type": V3_NAMES[dt],
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 4, 4]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}], "attributes": {}})

write(f"{out}/empty.zarr/.zgroup", {"zarr_format": 2})
write(f"{out}/empty.zarr/raw/.zarray", {"zarr_format": 2, "shape": [2, 0, 4], "chunks": [1, 4, 4], "dtype": "|u1",
                                        "compressor": None, "fill_value": 0, "order": "C", "filters": None})
print(f"wrote {len(REFUSED + ACCEPTED) * 2} fill fixtures and empty.zarr under {out}")
