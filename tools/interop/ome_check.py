#!/usr/bin/env python3
"""Checks an OME-Zarr multiscale image written by brainmap with zarr-python.

  ome_check.py GROUP VERSION    VERSION 0.4 (Zarr v2) or 0.5 (Zarr v3)

Asserts the multiscales metadata (axes, datasets, scales doubling in y and x) and that every level equals the
2×2 mean of the level before (edge blocks average what exists; rounding half away from zero for integers).
"""
import sys
import numpy as np
import zarr


def mean2(a):
    *lead, h, w = a.shape
    out = np.zeros(tuple(lead) + ((h + 1) // 2, (w + 1) // 2))
    cnt = np.zeros_like(out)
    for dy in (0, 1):
        for dx in (0, 1):
            part = a[..., dy::2, dx::2].astype(np.float64)
            out[..., : part.shape[-2], : part.shape[-1]] += part
            cnt[..., : part.shape[-2], : part.shape[-1]] += 1
    m = out / cnt
    if np.issubdtype(a.dtype, np.integer):
        m = np.sign(m) * np.floor(np.abs(m) + 0.5)
    return m.astype(a.dtype)


def main(path, version):
    g = zarr.open_group(path, mode="r")
    attrs = dict(g.attrs)
    ms = attrs["ome"]["multiscales"][0] if version == "0.5" else attrs["multiscales"][0]
    if version == "0.5":
        assert attrs["ome"]["version"] == "0.5", attrs
    else:
        assert ms["version"] == "0.4", ms
    paths = [d["path"] for d in ms["datasets"]]
    scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
    assert len(ms["axes"]) == g[paths[0]].ndim
    prev = g[paths[0]][...]
    for i, p in enumerate(paths[1:], 1):
        assert scales[i][-1] == 2 * scales[i - 1][-1] and scales[i][-2] == 2 * scales[i - 1][-2], scales
        assert scales[i][0] == scales[0][0]
        cur = g[p][...]
        exp = mean2(prev)
        if not np.array_equal(cur, exp):
            print(f"FAIL level {p}: {np.count_nonzero(cur != exp)} values differ"); sys.exit(1)
        prev = cur
    print(f"ok {len(paths)} levels {[list(g[p].shape) for p in paths]}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
