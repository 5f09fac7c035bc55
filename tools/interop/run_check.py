#!/usr/bin/env python3
"""Opens a brainmap prediction run with zarr-python: prints each array's shape and dtype, the number of OME
multiscales entries, and the sum of labels on slice Z (for the tests to compare with brainmap's own reads).

  run_check.py RUN.zarr Z
"""
import sys
import numpy as np
import zarr

run, z = sys.argv[1], int(sys.argv[2])
g = zarr.open_group(run, mode="r")
for name in ["labels", "probabilities", "features", "entropy"]:
    if name in g:
        a = g[name]
        print(name, tuple(a.shape), a.dtype)
print("multiscales", len(g.attrs.get("multiscales", [])))
print("sum labels", int(np.asarray(g["labels"][z]).astype(np.int64).sum()))
