#!/usr/bin/env python3
"""Opens a brainmap prediction run with zarr-python: prints each array's (level 0's) shape and dtype, the number of
OME image groups the root lists (`labels`) and of multiscales entries it has (runs older brainmaps wrote: one per
array), and the sum of labels on slice Z (for the tests to compare with brainmap's own reads).

  run_check.py RUN.zarr Z
"""
import sys
import numpy as np
import zarr

run, z = sys.argv[1], int(sys.argv[2])
g = zarr.open_group(run, mode="r")
level0 = lambda name: g[name]["0"] if isinstance(g[name], zarr.Group) else g[name]
for name in ["labels", "probabilities", "features", "entropy"]:
    if name in g:
        a = level0(name)
        print(name, tuple(a.shape), a.dtype)
print("image groups", len(g.attrs.get("labels", [])))
print("multiscales", len(g.attrs.get("multiscales", [])))
print("sum labels", int(np.asarray(level0("labels")[z]).astype(np.int64).sum()))
