#!/usr/bin/env python3
"""Test fixture helper: gives a run made with random weights (which predict one class everywhere) the label map of a
plausible model, so reports and overlays have every class to show: wherever predict labelled a pixel, the phantom's
area id under it (sampled at the run's stride), with one rectangle per slice relabelled HYP so the evaluation is not
perfect. Writes through zarr-python, only chunks predict wrote.

usage: paint_labels.py RUN.zarr AREAS
"""
import json, os, sys
import numpy as np
import zarr

run, areas = sys.argv[1], sys.argv[2]
stride = int(json.load(open(run + "/run.json"))["identity"]["stride"])
# Level 0 (a run's outputs are OME image groups; runs of older brainmaps hold single arrays). Its pyramid levels are
# left as predict built them: the report reads level 0.
labels = zarr.open_array(run + ("/labels/0" if os.path.exists(run + "/labels/0/.zarray") else "/labels"), mode="r+")
truth = np.asarray(zarr.open_array(areas, mode="r")[:, ::stride, ::stride])
cur = labels[:]
new = np.where(cur > 0, np.where(truth > 0, truth, cur), 0).astype(cur.dtype)
h, w = new.shape[1:]
box = (slice(None), slice(h // 5, h // 3), slice(w // 6, w // 3))
new[box] = np.where(new[box] > 0, 2, 0)
labels[:] = new
print(json.dumps({"ids": sorted(int(i) for i in np.unique(new))}))
