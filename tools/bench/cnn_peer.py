#!/usr/bin/env python3
"""Peers for `brainmap bench gemm|cnn`, measured in the same run on the same machine.

  cnn_peer.py gemm M N K SECONDS THREADS       numpy float32 matmul GFLOP/s (numpy's own BLAS)
  cnn_peer.py cnn WEIGHTS SECONDS THREADS [MODES]
                                               onnxruntime: per-patch padded-128 net (batch 32) in patches/s ("exact"),
                                               and the dense stride-1 dilated net (built as its own ONNX graph) on a
                                               128×128 output tile in px/s ("dense"); MODES: dense,exact (default)
"""
import sys, time
import numpy as np


def gemm(m, n, k, seconds, threads):
    from threadpoolctl import threadpool_limits
    a = np.random.rand(m, k).astype(np.float32); b = np.random.rand(k, n).astype(np.float32)
    with threadpool_limits(int(threads)):
        a @ b
        t0, reps = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            a @ b; reps += 1
    print(f"gemm {2 * m * n * k * reps / (time.perf_counter() - t0) / 1e9:.1f}")


def cnn(weights, seconds, threads, modes="dense,exact"):
    import onnx, onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file
    sys.path.insert(0, __file__.rsplit("/", 3)[0] + "/tools")
    from onnx_reference import build
    w = load_file(weights)
    so = ort.SessionOptions(); so.intra_op_num_threads = int(threads); so.inter_op_num_threads = 1

    modes = modes.split(",")
    if "exact" in modes:
        sess = build(w, 128, 1, so)
        x = np.random.rand(32, 3, 128, 128).astype(np.float32)
        sess.run(None, {"x": x})
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            sess.run(None, {"x": x}); n += 32
        print(f"exact {n / (time.perf_counter() - t0):.1f}")
    if "dense" not in modes:
        return

    # dense dilated net: fc1 as 6x6 conv dilation 16, fc2/fc3 1x1
    inits = [numpy_helper.from_array(w[f"conv{i}.weight"].sum(axis=1, keepdims=True) if i == 1 else w[f"conv{i}.weight"], f"cw{i}")
             for i in range(1, 5)] + [numpy_helper.from_array(w[f"conv{i}.bias"], f"cb{i}") for i in range(1, 5)]
    inits += [numpy_helper.from_array(w["fc1.weight"].reshape(1024, 128, 6, 6), "f1"), numpy_helper.from_array(w["fc1.bias"], "fb1"),
              numpy_helper.from_array(w["fc2.weight"].reshape(64, 1024, 1, 1), "f2"), numpy_helper.from_array(w["fc2.bias"], "fb2"),
              numpy_helper.from_array(w["fc3.weight"].reshape(6, 64, 1, 1), "f3"), numpy_helper.from_array(w["fc3.bias"], "fb3")]
    nodes, x_, d = [], "x", 1
    for i in range(1, 5):
        nodes += [helper.make_node("Conv", [x_, f"cw{i}", f"cb{i}"], [f"c{i}"], dilations=[d, d]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
                  helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[1, 1], dilations=[d, d])]
        x_, d = f"p{i}", d * 2
    nodes += [helper.make_node("Conv", [x_, "f1", "fb1"], ["h"], dilations=[16, 16]), helper.make_node("Relu", ["h"], ["hr"]),
              helper.make_node("Conv", ["hr", "f2", "fb2"], ["latents"]), helper.make_node("Conv", ["latents", "f3", "fb3"], ["logits"])]
    g = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 261, 261])],
                          [helper.make_tensor_value_info("latents", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    dsess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    t = np.random.rand(1, 1, 261, 261).astype(np.float32)
    dsess.run(None, {"x": t})
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        dsess.run(None, {"x": t}); n += 128 * 128
    print(f"dense {n / (time.perf_counter() - t0):.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "gemm":
        gemm(*map(int, sys.argv[2:5]), float(sys.argv[5]), sys.argv[6])
    else:
        cnn(sys.argv[2], float(sys.argv[3]), sys.argv[4], *sys.argv[5:6])
