#!/usr/bin/env python3
"""Writes Fixtures/training/tiny_step.safetensors: a small member of the paper's network family (same layer kinds:
conv 7/5/3/3 with padding 1 on conv1, ReLU, 2x2 max pools, dropout before each of three linear layers), a batch of 3
images with labels and dropout masks, and JAX's float64 loss, gradients and parameters after one Adam step
(tools/reference/jax_train_step.py). TrainingTests compares brainmap against it without Python.

  .venv/bin/python tools/make_training_fixture.py
"""
import os, subprocess, sys, tempfile
import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVS = [(4, 3, 7, 1), (5, 4, 5, 0), (6, 5, 3, 0), (7, 6, 3, 0)]   # out, in, k, pad
FCS = [(16, 7, 1), (8, 16, 0), (6, 8, 0)]                            # out, in, relu


def main():
    rng = np.random.default_rng(2026)
    d = {}
    for i, (o, c, k, _) in enumerate(CONVS):
        bound = 1 / np.sqrt(c * k * k)
        d[f"conv{i+1}.weight"] = rng.uniform(-bound, bound, (o, c, k, k))
        d[f"conv{i+1}.bias"] = rng.uniform(-bound, bound, (o,))
    for i, (o, c, _) in enumerate(FCS):
        bound = 1 / np.sqrt(c)
        d[f"fc{i+1}.weight"] = rng.uniform(-bound, bound, (o, c))
        d[f"fc{i+1}.bias"] = rng.uniform(-bound, bound, (o,))
    n = 3
    d["images"] = rng.uniform(0, 1, (n, 54, 54))
    d["labels"] = np.array([1, 4, 2], dtype=np.float64)
    width = sum(c for _, c, _ in FCS)
    d["masks"] = np.where(rng.uniform(0, 1, (n, width)) < 0.3, 0.0, 1 / 0.7)
    d["pads"] = np.array([p for *_, p in CONVS], dtype=np.float64)
    d["relu"] = np.array([r for *_, r in FCS], dtype=np.float64)
    d = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in d.items()}
    with tempfile.TemporaryDirectory() as tmp:
        save_file(d, f"{tmp}/in.safetensors")
        subprocess.run([sys.executable, f"{ROOT}/tools/reference/jax_train_step.py", f"{tmp}/in.safetensors",
                        f"{tmp}/out.safetensors"], check=True)
        d.update(load_file(f"{tmp}/out.safetensors"))
    out = f"{ROOT}/Fixtures/training/tiny_step.safetensors"
    save_file(d, out)
    print(f"wrote {out}: {len(d)} tensors, loss {d['loss'][0]:.6f}")


if __name__ == "__main__":
    main()
