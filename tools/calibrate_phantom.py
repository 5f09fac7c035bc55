#!/usr/bin/env python3
"""Side-by-side texture statistics of the real slice 309 (../shared/data) and a phantom slice.

  calibrate_phantom.py REAL_DIR PHANTOM.zarr [Z]

The same measurements run on both: tissue intensity percentiles, dark-object fraction and connected dark blobs
(cell bodies and vessels: count per 100×100 px and median blob area), bright fraction (myelinated axons, fascicles),
per area. Real areas are hand-picked crops of slice 309 (right to left: cortex, corpus callosum, striatum, ...);
phantom areas come from its ground truth. The expert microstructure masks give the real class fractions.
"""
import sys
import numpy as np
from PIL import Image
from scipy import ndimage
import zarr

# (area, rows, cols) crops of the real slice 309, chosen inside one area each by eye from the overview.
REAL_CROPS = {"CTX": (slice(350, 1050), slice(4750, 5450)), "WM": (slice(300, 1000), slice(4250, 4330)),
              "STR": (slice(350, 1050), slice(3350, 4050)), "VP": (slice(500, 1100), slice(1700, 2300)),
              "HYP": (slice(500, 1000), slice(450, 950))}


def stats(img, mask):
    v = img[mask]
    med = np.median(v)
    dark = (img < med - 35) & mask
    bright = (img > med + 30) & mask
    lab, n = ndimage.label(dark)
    sizes = ndimage.sum(dark, lab, range(1, n + 1)) if n else np.array([])
    sizes = sizes[sizes >= 8]
    area = mask.sum()
    return {"p5/p50/p95": "/".join(str(int(np.percentile(v, p))) for p in (5, 50, 95)),
            "dark %": f"{100 * dark.sum() / area:.1f}", "bright %": f"{100 * bright.sum() / area:.1f}",
            "blobs /100²px": f"{1e4 * len(sizes) / area:.1f}",
            "blob median px": f"{np.median(sizes):.0f}" if len(sizes) else "-"}


def main(real_dir, phantom, z=None):
    real = np.array(Image.open(f"{real_dir}/slice309_raw_posterized.png").convert("L"))
    g = zarr.open_group(phantom, mode="r")
    z = int(z) if z is not None else g["raw"].shape[0] // 2
    raw, areas = g["raw"][z], g["areas"][z]
    names = ["background", "CTX", "HYP", "STR", "VP", "WM", "ZI"]
    cols = ["p5/p50/p95", "dark %", "bright %", "blobs /100²px", "blob median px"]
    print("| area | source | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for name in ["CTX", "WM", "STR", "VP", "ZI", "HYP"]:
        if name in REAL_CROPS:
            r, c = REAL_CROPS[name]
            crop = real[r, c]
            s = stats(crop, np.ones_like(crop, bool))
            print(f"| {name} | real 309 | " + " | ".join(s[k] for k in cols) + " |")
        m = ndimage.binary_erosion(areas == names.index(name), iterations=8)
        if m.sum() > 1000:
            s = stats(raw, m)
            print(f"| {name} | phantom z={z} | " + " | ".join(s[k] for k in cols) + " |")
    tissue = real > 30
    print(f"\nreal tissue p5/p50/p95: " + "/".join(str(int(np.percentile(real[tissue], p))) for p in (5, 50, 95))
          + f"; phantom tissue: " + "/".join(str(int(np.percentile(raw[areas > 0], p))) for p in (5, 50, 95)))
    print("\nexpert masks (fraction of pixels: 1 / 2 / 3 = myelinated axons; component median px of 1 and 2):")
    for k in ["ctx", "str", "trn", "zi"]:
        d = np.load(f"{real_dir}/microstructure_{k}.npz")["arr_0"]
        fr = [f"{100 * (d == i).mean():.1f}%" for i in (1, 2, 3)]
        med = []
        for i in (1, 2):
            sizes = []
            for s in d:
                lab, n = ndimage.label(s == i)
                if n:
                    sizes += list(ndimage.sum(s == i, lab, range(1, n + 1)))
            med.append(f"{np.median(sizes):.0f}" if sizes else "-")
        print(f"  {k}: {' / '.join(fr)}; components {med[0]} / {med[1]} px")


if __name__ == "__main__":
    main(*sys.argv[1:])
