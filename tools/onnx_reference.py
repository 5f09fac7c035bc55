#!/usr/bin/env python3
"""Independent reference for brainmap's CNN engine: the paper's network built as an ONNX graph with onnx.helper from
the same safetensors weights (read by the official safetensors library), run in onnxruntime.

  onnx_reference.py weights DIR SEED          write DIR/weights.safetensors: PyTorch-default-initialised random weights
  onnx_reference.py run WEIGHTS IMAGE H W PIXELS OUTDIR
        IMAGE: H×W uint8 raw; PIXELS: JSON [[r, c], ...]. Writes OUTDIR/{exact,dense}_{latents,logits}.bin (float32):
        exact = zero-padded 128 patch net (conv1/conv2 padding 1), patch rows [r-64, r+64), cols [c-64, c+64);
        dense = padding-0 net on the 134 window rows [r-67, r+67), cols [c-67, c+67); zeros outside the image.
"""
import json, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import onnxruntime as ort
from safetensors.numpy import load_file, save_file

SHAPES = {"conv1": (16, 3, 7, 7), "conv2": (32, 16, 5, 5), "conv3": (64, 32, 3, 3), "conv4": (128, 64, 3, 3),
          "fc1": (1024, 4608), "fc2": (64, 1024), "fc3": (6, 64)}


def random_weights(path, seed):
    rng = np.random.default_rng(seed)
    w = {}
    for name, shape in SHAPES.items():
        bound = 1 / np.sqrt(np.prod(shape[1:]))
        w[name + ".weight"] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
        w[name + ".bias"] = rng.uniform(-bound, bound, size=shape[0]).astype(np.float32)
    save_file(w, path)


def build(w, side, pad, so=None):
    nodes, inits = [], [numpy_helper.from_array(v, k) for k, v in w.items()]
    x = "x"
    for i, p in zip(range(1, 5), [pad, pad, 0, 0]):
        nodes += [helper.make_node("Conv", [x, f"conv{i}.weight", f"conv{i}.bias"], [f"c{i}"], pads=[p] * 4),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
                  helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2])]
        x = f"p{i}"
    nodes += [helper.make_node("Flatten", [x], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["h1"], transB=1),
              helper.make_node("Relu", ["h1"], ["a1"]),
              helper.make_node("Gemm", ["a1", "fc2.weight", "fc2.bias"], ["latents"], transB=1),
              helper.make_node("Gemm", ["latents", "fc3.weight", "fc3.bias"], ["logits"], transB=1)]
    g = helper.make_graph(nodes, "area_classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, side, side])],
                          [helper.make_tensor_value_info("latents", TensorProto.FLOAT, ["n", 64]),
                           helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 6])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    if so is None:  # the tests: no graph rewrites, the network exactly as written
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def patches(img, pixels, half):
    h, w = img.shape
    padded = np.zeros((h + 2 * half, w + 2 * half), np.float32)
    padded[half:half + h, half:half + w] = img.astype(np.float32) / 255
    out = np.stack([padded[r:r + 2 * half, c:c + 2 * half] for r, c in pixels])
    return np.repeat(out[:, None], 3, axis=1)


def run(weights, image, h, w, pixels, outdir):
    wt = load_file(weights)
    img = np.fromfile(image, np.uint8).reshape(int(h), int(w))
    px = json.load(open(pixels))
    for mode, side, pad in [("exact", 128, 1), ("dense", 134, 0)]:
        sess = build(wt, side, pad)
        lat, log = sess.run(["latents", "logits"], {"x": patches(img, px, side // 2)})
        lat.astype(np.float32).tofile(f"{outdir}/{mode}_latents.bin")
        log.astype(np.float32).tofile(f"{outdir}/{mode}_logits.bin")
    print(f"ok {len(px)} pixels")


if __name__ == "__main__":
    if sys.argv[1] == "weights":
        random_weights(f"{sys.argv[2]}/weights.safetensors", int(sys.argv[3]))
    else:
        run(*sys.argv[2:8])
