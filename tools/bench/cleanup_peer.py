#!/usr/bin/env python3
"""In-memory peer of `brainmap bench cleanup`: the paper's Algorithm 1 as its reference runs it, per slice on the
whole slice in RAM — scipy.ndimage.label (4-connectivity), keep each class's b_i largest components, then
scikit-learn's KNeighborsClassifier (k = 3, default algorithm) fitted on the kept pixels' coordinates predicts the rest.
Reads RUN/labels with zarr-python; results stay in memory. Prints seconds and peak RSS.

  cleanup_peer.py RUN.zarr FIRST_SLICE COUNT
"""
import resource, sys, time
import numpy as np
import zarr
from scipy import ndimage
from sklearn.neighbors import KNeighborsClassifier

KEEP = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 1}


def cleanup(lab, k=3):
    kept = np.zeros(lab.shape, bool)
    for c, b in KEEP.items():
        comp, n = ndimage.label(lab == c)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel())[1:]
        kept |= np.isin(comp, np.argsort(-sizes, kind="stable")[:b] + 1)
    out = lab.copy()
    removed = (lab > 0) & ~kept
    if removed.any():
        L = np.argwhere(kept)
        clf = KNeighborsClassifier(n_neighbors=k).fit(L, lab[kept])
        out[removed] = clf.predict(np.argwhere(removed))
    return out


def main(run, first, count):
    first, count = int(first), int(count)
    t0 = time.perf_counter()
    labels = zarr.open_array(run + "/labels", mode="r")
    pixels = 0
    for z in range(first, first + count):
        lab = labels[z]
        pixels += int((lab > 0).sum())
        cleanup(lab)
    dt = time.perf_counter() - t0
    print(f"seconds {dt:.3f} peak_rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} pixels {pixels}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
