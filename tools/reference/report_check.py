#!/usr/bin/env python3
"""Checks a brainmap report's images against the run's arrays, read independently with zarr-python and numpy.

usage: report_check.py RUN.zarr REPORT_DIR Z WIDTH
Prints one JSON object of measurements; the Swift test asserts on them. The rules recomputed here are the report's
documented ones: image column u covers run columns [ceil(u*n/w), ceil((u+1)*n/w)); float maps are the NaN-aware mean
of the footprint, integer maps its centre pixel; overlays are round(0.5*grey + 0.5*colour) with the class colours
(Okabe-Ito) and cluster colours (Tableau 10) the README lists.
"""
import json, os, sys
import numpy as np
import zarr
from PIL import Image

CLASSES = ["#E69F00", "#CC79A7", "#009E73", "#D55E00", "#56B4E9", "#0072B2"]
CLUSTERS = ["#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F", "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC"]


def level0(run, name):
    """An output's full-resolution array: level 0 of its OME image group, or the single array of an older run."""
    return zarr.open_array(run + f"/{name}/0" if os.path.exists(run + f"/{name}/0/.zarray") else run + f"/{name}", mode="r")


def rgb(h):
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)


def main():
    run, rep, z, width = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    meta = json.load(open(run + "/run.json"))
    stride = int(meta["identity"]["stride"])
    labels = np.asarray(level0(run, "labels")[z])
    H, W = labels.shape
    w = min(width, W)
    h = max(1, min(H, int(round(H * w / W))))
    out = {"size": [w, h]}

    def centres(n, m):
        u = np.arange(m)
        lo, hi = (u * n + m - 1) // m, ((u + 1) * n + m - 1) // m
        return (lo + hi - 1) // 2

    def mean_down(a, scale=1):
        """NaN-aware mean over footprints; `a` at `scale` array pixels per run pixel."""
        a = np.asarray(a, dtype=np.float64)
        rr = np.arange(a.shape[0]) // scale
        cc = np.arange(a.shape[1]) // scale
        keep_r, keep_c = rr < H, cc < W
        a = a[keep_r][:, keep_c]
        ri, ci = (rr[keep_r] * h) // H, (cc[keep_c] * w) // W
        idx = (ri[:, None] * w + ci[None, :]).ravel()
        v = a.ravel()
        ok = ~np.isnan(v)
        s = np.bincount(idx[ok], weights=v[ok], minlength=h * w)
        n = np.bincount(idx[ok], minlength=h * w)
        with np.errstate(invalid="ignore"):
            return (s / n).reshape(h, w)

    def load(name, mode):
        return np.asarray(Image.open(f"{rep}/z{z}-{name}.png").convert(mode), dtype=float)

    def linear_fit(x, y):
        """Least-squares y = a x + b; max residual and correlation."""
        a, b = np.polyfit(x, y, 1)
        return float(np.abs(y - (a * x + b)).max()), float(np.corrcoef(x, y)[0, 1])

    # Raw: the stretched mean of each footprint at the source's resolution.
    grey = load("raw", "L")
    out["raw_size"] = [grey.shape[1], grey.shape[0]]
    src = meta["identity"]["source"]
    g = zarr.open(src, mode="r")
    raw = g["0"] if isinstance(g, zarr.Group) else g
    m = mean_down(raw[z], scale=stride)
    unclipped = (grey > 0) & (grey < 255)
    out["raw_max_residual"], out["raw_correlation"] = linear_fit(m[unclipped], grey[unclipped])

    # Label overlays: every pixel is the blend of the grey and its label's colour (or the grey for label 0).
    def overlay(name, ids, palette):
        img = load(name, "RGB")
        pal = np.array([rgb(c) for c in palette])
        col = np.where(ids[..., None] > 0, pal[(np.maximum(ids, 1) - 1) % len(pal)], grey[..., None])
        expected = np.floor(0.5 * grey[..., None] + 0.5 * col + 0.5)
        return float(np.abs(img - expected).max()), int((ids > 0).sum())

    sample = np.ix_(centres(H, h), centres(W, w))
    for name, palette in [("labels", CLASSES), ("labels_clean", CLASSES), ("clusters", CLUSTERS)]:
        ids = np.asarray(level0(run, name)[z])[sample].astype(int)
        out[name + "_max_error"], out[name + "_labelled_pixels"] = overlay(name, ids, palette)
        out[name + "_ids"] = sorted(int(i) for i in np.unique(ids))

    # Entropy: viridis index (found through the colour bar's colours) = round(e / ln 6 * 255).
    bar = np.asarray(Image.open(rep + "/colorbar-viridis.png").convert("RGB"), dtype=float)[0]
    def viridis_index(name):
        img = np.asarray(Image.open(f"{rep}/z{z}-{name}.png").convert("RGBA"), dtype=float)
        d = ((img[..., None, :3] - bar[None, None, :, :]) ** 2).sum(-1)
        return d.argmin(-1), img[..., 3] > 0, d.min(-1)
    e = mean_down(level0(run, "entropy")[z])
    idx, opaque, dist = viridis_index("entropy")
    out["entropy_transparent_where_nan"] = bool(np.array_equal(~opaque, np.isnan(e)))
    exp = np.round(np.clip(e / np.log(6), 0, 1) * 255)
    out["entropy_index_max_error"] = float(np.abs(idx[opaque] - exp[opaque]).max())
    out["entropy_colour_distance_max"] = float(dist[opaque].max())

    # PC1-3 composite: each channel a clipped linear map of the mean-downsampled component.
    pca = level0(run, "pca")
    comp = np.asarray(Image.open(f"{rep}/z{z}-pca-rgb.png").convert("RGBA"), dtype=float)
    out["pca_correlation"], out["pca_max_residual"] = [], []
    for k in range(3):
        pc = mean_down(pca[k, z])
        ch = comp[..., k]
        ok = (comp[..., 3] > 0) & (ch > 0) & (ch < 255)
        r, c = linear_fit(pc[ok], ch[ok])
        out["pca_max_residual"].append(r)
        out["pca_correlation"].append(c)
    out["pca_transparent_where_nan"] = bool(np.array_equal(comp[..., 3] == 0, np.isnan(mean_down(pca[0, z]))))

    # NMF factors: viridis index proportional to the coefficient, from 0 (below the clip at the top).
    nmf = level0(run, "nmf")
    out["nmf_max_residual"] = []
    for f in range(nmf.shape[0]):
        v = mean_down(nmf[f, z])
        idx, opaque, _ = viridis_index(f"nmf-{f + 1}")
        ok = opaque & (idx < 255) & (idx > 0)
        a = (idx[ok] * v[ok]).sum() / (v[ok] ** 2).sum()   # fit through the origin: index = a·v
        out["nmf_max_residual"].append(float(np.abs(idx[ok] - a * v[ok]).max()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
