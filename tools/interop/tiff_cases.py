#!/usr/bin/env python3
"""TIFF interop between brainmap and tifffile.

  tiff_cases.py write DIR                 write stack_a.tif (3 pages), stack_b.tif (1 page), uint16, small strips,
                                          big-endian for b; DIR/expected.bin holds all 4 pages, native order
  tiff_cases.py check FILE BIN DTYPE Z,Y,X  read FILE with tifffile and compare with BIN; exit 1 on mismatch
"""
import sys
import numpy as np
import tifffile


def write(d):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 65535, size=(4, 45, 61), dtype=np.uint16)
    tifffile.imwrite(f"{d}/stack_a.tif", a[:3], rowsperstrip=7, photometric="minisblack")
    tifffile.imwrite(f"{d}/stack_b.tif", a[3:].astype(">u2"), byteorder=">", rowsperstrip=5, photometric="minisblack")
    a.tofile(f"{d}/expected.bin")


def check(path, bin_path, dtype, shape):
    got = tifffile.imread(path)
    exp = np.fromfile(bin_path, dtype=np.dtype(dtype)).reshape([int(s) for s in shape.split(",")])
    got = got.reshape(exp.shape)
    if not np.array_equal(got, exp):
        print(f"FAIL {path}: {np.count_nonzero(got != exp)} values differ"); sys.exit(1)
    print(f"ok {path} {got.shape} {got.dtype}")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        check(*sys.argv[2:6])
