#!/usr/bin/env python3
"""numpy/scipy reference for `train --augment` (Sources/Pipeline/Training/Augmentation.swift) and for the anomaly
map's Mahalanobis distances (Sources/NeuralNet/LatentStatistics.swift), for their tests.

  augment_reference.py augment PATCHES.bin SIDE DRAWS.json OUT.bin
      PATCHES.bin: uint8 (N, SIDE, SIDE); DRAWS.json: N objects {transpose, rotations, sigma, gamma, contrast,
      brightness}. Writes float32 (N, SIDE, SIDE): transpose, np.rot90(k), scipy.ndimage.gaussian_filter(mode
      "reflect", truncate 3), x**gamma, (x - mean)*contrast + mean + brightness clipped to [0, 1].
  augment_reference.py stats X.bin N D SHRINK T.bin M OUT.bin
      X float32 (N, D) training rows, T float32 (M, D) test rows. Writes float64: the mean (D,), the shrunk
      covariance (D, D) = (1-a)*cov(X) + a*trace/D*I (numpy.cov, n-1), then the M distances of T's rows by
      scipy.spatial.distance.mahalanobis with that covariance's inverse (numpy.linalg.inv).
"""
import json
import sys
import numpy as np
from scipy import ndimage
from scipy.spatial import distance


def augment(args):
    path, side, draws, out = args[0], int(args[1]), json.load(open(args[2])), args[3]
    x = np.fromfile(path, np.uint8).reshape(-1, side, side)
    res = []
    for p, d in zip(x, draws):
        y = p.T if d["transpose"] else p
        y = np.rot90(y, d["rotations"]).astype(np.float64) / 255.0
        if d["sigma"] > 0:
            y = ndimage.gaussian_filter(y, d["sigma"], mode="reflect", truncate=3.0)
        y = y ** d["gamma"]
        m = y.mean()
        y = np.clip((y - m) * d["contrast"] + m + d["brightness"], 0, 1)
        res.append(y.astype(np.float32))
    np.asarray(res, np.float32).tofile(out)


def stats(args):
    n, d, a, m = int(args[1]), int(args[2]), float(args[3]), int(args[5])
    x = np.fromfile(args[0], np.float32).reshape(n, d).astype(np.float64)
    t = np.fromfile(args[4], np.float32).reshape(m, d).astype(np.float64)
    s = np.cov(x, rowvar=False)
    shrunk = (1 - a) * s + a * np.trace(s) / d * np.eye(d)
    mean, vi = x.mean(0), np.linalg.inv(shrunk)
    dist = np.array([distance.mahalanobis(r, mean, vi) for r in t], np.float64)
    np.concatenate([mean, shrunk.ravel(), dist]).tofile(args[6])


if __name__ == "__main__":
    {"augment": augment, "stats": stats}[sys.argv[1]](sys.argv[2:])
