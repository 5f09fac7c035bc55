#!/usr/bin/env python3
"""PyTorch peer for `brainmap bench cnn` (run by .venv-torch, see setup-torch.sh): the same weights, CPU, THREADS threads.

  cnn_torch_peer.py WEIGHTS SECONDS THREADS [TILES] [MODES]

Prints
  exact R        the paper's network on zero-padded 128x128 patches (3 channels, conv1/conv2 padding 1), batch 64,
                 patches/s
  dense@T R      the dense stride-1 net (each pool at stride 1 and the later layers dilated, fc1 as a 6x6 conv of
                 dilation 16, fc2/fc3 as 1x1) on one T x T output tile (input T+133), output px/s, for each T in
                 TILES (default 128,256,384: a larger tile amortises the 133-pixel halo)
  dense R        the best of those
TILES "none": no dense tiles (exact only). MODES: dense, exact or dense,exact (the default): what is measured.
Under torch.inference_mode; one warm-up call per shape before timing.
"""
import sys, time
import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def timed(fn, per_call, seconds):
    fn()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn(); n += per_call
    return n / (time.perf_counter() - t0)


def exact(w, x):
    for i, pad in ((1, 1), (2, 1), (3, 0), (4, 0)):
        x = F.max_pool2d(F.relu(F.conv2d(x, w[f"conv{i}.weight"], w[f"conv{i}.bias"], padding=pad)), 2)
    x = F.relu(F.linear(torch.flatten(x, 1), w["fc1.weight"], w["fc1.bias"]))
    lat = F.linear(x, w["fc2.weight"], w["fc2.bias"])
    return lat, F.linear(lat, w["fc3.weight"], w["fc3.bias"])


def dense(w, x):
    d = 1
    for i in range(1, 5):
        cw = w[f"conv{i}.weight"]
        if i == 1:
            cw = cw.sum(dim=1, keepdim=True)   # gray in all three channels: fold them, as brainmap does
        x = F.max_pool2d(F.relu(F.conv2d(x, cw, w[f"conv{i}.bias"], dilation=d)), 2, stride=1, dilation=d)
        d *= 2
    h = F.relu(F.conv2d(x, w["fc1.weight"].reshape(1024, 128, 6, 6), w["fc1.bias"], dilation=16))
    lat = F.conv2d(h, w["fc2.weight"].reshape(64, 1024, 1, 1), w["fc2.bias"])
    return lat, F.conv2d(lat, w["fc3.weight"].reshape(6, 64, 1, 1), w["fc3.bias"])


def main(path, seconds, threads, tiles="128,256,384", modes="dense,exact"):
    seconds = float(seconds)
    modes = modes.split(",")
    torch.set_num_threads(int(threads))
    w = load_file(path)
    with torch.inference_mode():
        if "exact" in modes:
            x = torch.rand(64, 3, 128, 128)
            print(f"exact {timed(lambda: exact(w, x), 64, seconds):.1f}", flush=True)
        if tiles == "none" or "dense" not in modes:
            return
        best = 0.0
        for t in map(int, tiles.split(",")):
            tile = torch.rand(1, 1, t + 133, t + 133)
            r = timed(lambda: dense(w, tile), t * t, seconds)
            print(f"dense@{t} {r:.1f}", flush=True)
            best = max(best, r)
        print(f"dense {best:.1f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
