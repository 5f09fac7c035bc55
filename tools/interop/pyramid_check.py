#!/usr/bin/env python3
"""Checks brainmap's multiscale pyramids against a numpy reference and ome-zarr-py (the reader napari uses).

  pyramid_check.py levels DIR mode|mean   the levels DIR/0, DIR/1 … (Zarr v2 arrays): each level k ≥ 1 equals the
                                          reference computed from level k − 1, level 0 being what brainmap wrote
  pyramid_check.py run RUN                every output image group the run's root lists (attribute `labels`): its
                                          levels as above (reduction from its multiscales `type`), its scales; then
                                          ome-zarr-py's Reader on RUN: one node with data per output, label maps as
                                          label nodes with their colours

The reference: a level halves y and x (the last two axes; ceil(n/2)), each pixel summarising the 2×2 window of the
level below (windows at the edge take the pixels that exist). mode: the most frequent value, a tie going to the
smallest. mean: the sum of the window's non-NaN values in row-major window order, in float64, divided by their
count (none → NaN), cast once to the dtype (integers rounded half away from zero). Levels continue until one fits
in one chunk. Prints one line per level and node; exit 1 on any mismatch.
"""
import sys
import numpy as np
import zarr


def windows(a):
    H, W = a.shape[-2:]
    h, w = (H + 1) // 2, (W + 1) // 2
    pad = [(0, 0)] * (a.ndim - 2) + [(0, 2 * h - H), (0, 2 * w - W)]
    p = np.pad(a, pad)
    ok = np.pad(np.ones((H, W), bool), [(0, 2 * h - H), (0, 2 * w - W)])
    split = lambda x: np.stack([x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]], axis=-1)
    return split(p), split(ok)


def mode(a):
    v, ok = windows(a.astype(np.int64))
    ok = np.broadcast_to(ok, v.shape)
    count = ((v[..., :, None] == v[..., None, :]) & ok[..., None, :]).sum(-1)
    key = np.where(ok, count, -1) * (1 << 40) - v
    return np.take_along_axis(v, key.argmax(-1)[..., None], -1)[..., 0].astype(a.dtype)


def mean(a):
    v, ok = windows(a.astype(np.float64))
    ok = np.broadcast_to(ok, v.shape) & ~np.isnan(v)
    s = np.zeros(v.shape[:-1]); n = np.zeros(v.shape[:-1])
    for i in range(4):
        s = s + np.where(ok[..., i], v[..., i], 0.0); n = n + ok[..., i]
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s / n
    if np.issubdtype(a.dtype, np.integer):
        m = np.sign(m) * np.floor(np.abs(m) + 0.5)
    return m.astype(a.dtype)


def expected_levels(shape, chunks):
    n, h, w = 1, shape[-2], shape[-1]
    if chunks[-2] % 2 or chunks[-1] % 2:
        return 1
    while h > chunks[-2] or w > chunks[-1]:
        h, w, n = (h + 1) // 2, (w + 1) // 2, n + 1
    return n


def check_levels(paths, reduction, label):
    bad = 0
    arrays = [zarr.open_array(p, mode="r") for p in paths]
    a0 = arrays[0]
    want = expected_levels(a0.shape, a0.chunks)
    if len(arrays) != want:
        print(f"MISMATCH {label}: {len(arrays)} levels, expected {want} for shape {a0.shape} chunks {a0.chunks}")
        bad += 1
    ref = np.asarray(a0[...])
    for k, a in enumerate(arrays[1:], 1):
        ref = (mode if reduction == "mode" else mean)(ref)
        got = np.asarray(a[...])
        same = got.shape == ref.shape and a.chunks == a0.chunks and np.array_equal(got, ref, equal_nan=got.dtype.kind == "f")
        print(f"{'ok' if same else 'MISMATCH'} {label} level {k} {got.shape} {got.dtype} {reduction}")
        if not same:
            bad += 1
            if got.shape == ref.shape:
                diff = np.argwhere(~((got == ref) | (np.isnan(got) & np.isnan(ref)) if got.dtype.kind == "f" else (got == ref)))
                print(f"  {len(diff)} pixels differ, first at {tuple(diff[0])}: got {got[tuple(diff[0])]}, expected {ref[tuple(diff[0])]}")
        ref = got   # the next level is checked against this one, as brainmap built it
    return bad


def check_run(run):
    bad = 0
    root = zarr.open_group(run, mode="r")
    names = list(root.attrs.get("labels", []))
    for name in names:
        ms = root[name].attrs["multiscales"][0]
        paths = [f"{run}/{name}/{d['path']}" for d in ms["datasets"]]
        bad += check_levels(paths, ms.get("type", "mean"), name)
        scales = [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]]
        if any(s[-1] != scales[0][-1] * 2 ** k or s[:-2] != scales[0][:-2] for k, s in enumerate(scales)):
            print(f"MISMATCH {name}: scales {scales}"); bad += 1
        label = root[name].attrs.get("image-label")
        if label and (name == "clusters" or name.startswith("clusters_")):
            kinds = {p["class"].split(" ")[0] for p in label["properties"]}
            if kinds != {"cluster"}:
                print(f"MISMATCH {name}: a clustering labelled as {sorted(kinds)}"); bad += 1
        # Level k's pixel centre sits (2^k - 1)/2 level-0 pixels on: a translation of stride*(2^k - 1)/2 in y and x.
        for k, d in enumerate(ms["datasets"]):
            t = [c["translation"] for c in d["coordinateTransformations"] if c["type"] == "translation"]
            want = scales[0][-1] * (2 ** k - 1) / 2
            got = t[0][-2:] if t else [0, 0]
            if got != [want, want]:
                print(f"MISMATCH {name}: level {k} translation {got}, expected {want}"); bad += 1
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Reader
    nodes = [n for n in Reader(parse_url(run))() if n.data]
    seen = set()
    for n in nodes:
        name = n.zarr.basename()
        seen.add(name)
        colors = n.metadata.get("color", {}) if n.load(Label) else {}
        print(f"napari {name} {'label' if n.load(Label) else 'image'} levels {len(n.data)} colors {len(colors)} shape0 {tuple(n.data[0].shape)}")
    if seen != set(names):
        print(f"MISMATCH ome-zarr-py nodes {sorted(seen)} != outputs {sorted(names)}"); bad += 1
    return bad


if __name__ == "__main__":
    if sys.argv[1] == "levels":
        d, red = sys.argv[2], sys.argv[3]
        import os
        paths = []
        while os.path.exists(f"{d}/{len(paths)}/.zarray"):
            paths.append(f"{d}/{len(paths)}")
        bad = check_levels(paths, red, d)
    else:
        bad = check_run(sys.argv[2])
    sys.exit(1 if bad else 0)
