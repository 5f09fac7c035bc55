#!/usr/bin/env python3
"""Reads a run over HTTP from `brainmap serve` with zarr-python (fsspec's HTTP store) and compares every array with
the same run read from disk; checks the byte-range and CORS headers with plain requests.

usage: serve_check.py URL RUN.zarr [URL…]   (further URLs: their status codes are reported, in order)
Prints one JSON object of findings; the Swift test asserts on them.
"""
import json, sys
import numpy as np
import requests
import zarr


def main():
    url, run = sys.argv[1].rstrip("/"), sys.argv[2]
    out = {}
    remote = zarr.open_group(url + "/", mode="r", zarr_format=2)
    local = zarr.open_group(run, mode="r", zarr_format=2)
    # The run's outputs: single arrays (runs of older brainmaps) or OME image groups, every level of which is compared.
    levels = {k: [k] for k, _ in local.arrays()}
    for k, g in local.groups():
        if "multiscales" in g.attrs:
            levels[k] = [f"{k}/{d['path']}" for d in g.attrs["multiscales"][0]["datasets"]]
    names = sorted(levels)
    out["arrays"] = names
    out["identical"] = {}
    out["attributes_equal"] = dict(remote.attrs) == dict(local.attrs)
    for n in names:
        same = True
        for p in levels[n]:
            a, b = np.asarray(remote[p][...]), np.asarray(local[p][...])
            same = same and bool(a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        out["identical"][n] = same
        if n in local.group_keys():
            out["attributes_equal"] = out["attributes_equal"] and dict(remote[n].attrs) == dict(local[n].attrs)

    # A chunk read whole, then a byte range of it.
    key = next(k for k in ["labels/0/0.0.0", "labels/0/1.0.0", "labels/0.0.0", "labels/1.0.0"] if requests.head(f"{url}/{k}").status_code == 200)
    whole = requests.get(f"{url}/{key}")
    part = requests.get(f"{url}/{key}", headers={"Range": "bytes=4-19", "Origin": "http://example.org"})
    tail = requests.get(f"{url}/{key}", headers={"Range": "bytes=-8"})
    bad = requests.get(f"{url}/{key}", headers={"Range": f"bytes={len(whole.content) + 10}-"})
    out["range"] = {"status": part.status_code, "content_range": part.headers.get("Content-Range"),
                    "expected_content_range": f"bytes 4-19/{len(whole.content)}",
                    "body_matches": part.content == whole.content[4:20],
                    "suffix_matches": tail.status_code == 206 and tail.content == whole.content[-8:],
                    "unsatisfiable_status": bad.status_code, "accept_ranges": whole.headers.get("Accept-Ranges")}
    missing = requests.get(f"{url}/labels/999.999.999")
    pre = requests.options(f"{url}/labels/.zattrs", headers={"Origin": "http://example.org", "Access-Control-Request-Method": "GET",
                                                             "Access-Control-Request-Headers": "range"})
    out["cors"] = {"get": whole.headers.get("Access-Control-Allow-Origin"), "range": part.headers.get("Access-Control-Allow-Origin"),
                   "missing_status": missing.status_code, "missing": missing.headers.get("Access-Control-Allow-Origin"),
                   "preflight_status": pre.status_code, "preflight_origin": pre.headers.get("Access-Control-Allow-Origin"),
                   "preflight_headers": pre.headers.get("Access-Control-Allow-Headers"),
                   "exposed": whole.headers.get("Access-Control-Expose-Headers")}
    out["state_urls"] = [requests.get(u).status_code for u in sys.argv[3:]]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
