#!/usr/bin/env python3
"""The paper's Algorithm 1 in memory, as its reference does it (scipy.ndimage.label + scikit-learn's
KNeighborsClassifier), plus a brute-force version that follows brainmap's tie rules exactly, for cleanup's tests.

  cleanup_reference.py LABELS.bin Z H W K CONNECTIVITY COMPONENTS OUT_PREFIX [--3d]

LABELS.bin: uint8 (Z, H, W), 0 = not predicted, 1..6 classes. COMPONENTS: "1=1,2=1,..." (class id = count kept).
Components per slice (per volume with --3d); kNN per slice. Ties: equal-size components → earlier first pixel in
(z, y, x) order; neighbours ordered by (distance², y, x); vote ties → smaller class id.
Writes OUT_PREFIX.sklearn.bin, OUT_PREFIX.brute.bin (uint8 results) and OUT_PREFIX.unique.bin (1 where the set of
the k nearest labelled pixels is unique, i.e. the k-th and (k+1)-th distances differ: scikit-learn's answer is then
well defined).
"""
import sys
import numpy as np
from scipy import ndimage
from sklearn.neighbors import KNeighborsClassifier


def keep_largest(lab3, keep, structure):
    kept = np.zeros(lab3.shape, bool)
    flat_index = np.arange(lab3.size).reshape(lab3.shape)
    for c in range(1, 7):
        comp, n = ndimage.label(lab3 == c, structure=structure)
        if n == 0 or keep.get(c, 0) == 0:
            continue
        ids = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(np.ones(lab3.shape), comp, ids)
        firsts = ndimage.minimum(flat_index, comp, ids)
        order = sorted(ids, key=lambda i: (-sizes[i - 1], firsts[i - 1]))
        kept |= np.isin(comp, order[:keep[c]])
    return kept


def main(path, Z, H, W, k, conn, comps, prefix, three_d):
    Z, H, W, k, conn = int(Z), int(H), int(W), int(k), int(conn)
    keep = {int(a): int(b) for a, b in (p.split("=") for p in comps.split(","))}
    lab = np.fromfile(path, np.uint8).reshape(Z, H, W)
    if three_d:
        structure = ndimage.generate_binary_structure(3, 1 if conn == 6 else 3)
        kept = keep_largest(lab, keep, structure)
    else:
        structure = ndimage.generate_binary_structure(2, 1 if conn == 4 else 2)
        kept = np.stack([keep_largest(lab[z], keep, structure) for z in range(Z)])
    sk, brute, unique = lab.copy(), lab.copy(), np.ones(lab.shape, np.uint8)
    for z in range(Z):
        L = np.argwhere(kept[z]); U = np.argwhere((lab[z] > 0) & ~kept[z])
        if len(U) == 0:
            continue
        if len(L) == 0:
            sk[z][tuple(U.T)] = 0; brute[z][tuple(U.T)] = 0
            continue
        Ly = lab[z][tuple(L.T)]
        clf = KNeighborsClassifier(n_neighbors=min(k, len(L)), algorithm="brute").fit(L, Ly)
        sk[z][tuple(U.T)] = clf.predict(U)
        if len(L) > k:
            d, _ = clf.kneighbors(U, n_neighbors=k + 1)
            unique[z][tuple(U.T)] = (d[:, k - 1] != d[:, k]).astype(np.uint8)
        for (y, x) in U:
            d2 = (L[:, 0] - y) ** 2 + (L[:, 1] - x) ** 2
            order = np.lexsort((L[:, 1], L[:, 0], d2))[:k]
            votes = np.bincount(Ly[order], minlength=8)
            brute[z, y, x] = int(np.argmax(votes))   # argmax takes the smallest class among equal counts
    sk.tofile(prefix + ".sklearn.bin"); brute.tofile(prefix + ".brute.bin"); unique.tofile(prefix + ".unique.bin")


if __name__ == "__main__":
    a = [x for x in sys.argv[1:] if x != "--3d"]
    main(*a[:8], three_d="--3d" in sys.argv)
