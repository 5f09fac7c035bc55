#!/usr/bin/env python3
"""For each array path given, prints 'PATH ok VALUE' (the first element, read from a missing chunk: the fill) or
'PATH refused' when zarr-python will not open or read it — the reference FillValueTests compares brainmap against.

  zarr_open_check.py ARRAY…
"""
import sys, warnings
import zarr

warnings.simplefilter("ignore")
for p in sys.argv[1:]:
    try:
        a = zarr.open_array(p, mode="r")
        print(p, "ok", a[(0,) * a.ndim].item())
    except Exception:
        print(p, "refused")
