#!/usr/bin/env python3
"""Convert a PyTorch checkpoint of the paper's network (the authors publish `cnn_weights.pt`, a state_dict) into
safetensors with the same tensor names, as float32, checking names and shapes against the architecture.

  export_weights.py cnn_weights.pt model.safetensors

Takes what people commonly save: a plain state_dict, a wrapped checkpoint ({"state_dict": ...},
{"model_state_dict": ..., "epoch": ..., "optimizer_state_dict": ...}, {"model": ...}), and DataParallel's
"module."-prefixed names.

Uses torch when it is installed. Without torch, it reads the checkpoint's zip layout itself (torch.save's default
since PyTorch 1.6: archive/data.pkl with persistent storage ids, archive/data/<key>): enough for state_dicts of
float tensors (wrapped or not), and no code from the checkpoint is executed (the unpickler only builds tensors,
dicts and plain values). The legacy pre-1.6 format needs torch; without it the tool says so.
"""
import io, pickle, sys, zipfile
from collections import OrderedDict
import numpy as np
from safetensors.numpy import save_file

SHAPES = {"conv1.weight": (16, 3, 7, 7), "conv1.bias": (16,), "conv2.weight": (32, 16, 5, 5), "conv2.bias": (32,),
          "conv3.weight": (64, 32, 3, 3), "conv3.bias": (64,), "conv4.weight": (128, 64, 3, 3), "conv4.bias": (128,),
          "fc1.weight": (1024, 4608), "fc1.bias": (1024,), "fc2.weight": (64, 1024), "fc2.bias": (64,),
          "fc3.weight": (6, 64), "fc3.bias": (6,)}
DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16}


def load_without_torch(path):
    zf = zipfile.ZipFile(path)
    pkl = next(n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl")
    prefix = pkl[: -len("data.pkl")]

    def rebuild_tensor(storage, offset, size, stride, *rest):
        data, dtype = storage
        n = int(np.prod(size)) if size else 1
        flat = np.frombuffer(data, dtype=dtype)
        return np.lib.stride_tricks.as_strided(flat[offset:], shape=tuple(size),
                                               strides=tuple(s * flat.itemsize for s in stride)).copy() if n else np.zeros(size, dtype)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild_tensor
            if module == "collections" and name == "OrderedDict":
                return OrderedDict
            if module == "torch" and name in DTYPES:
                return DTYPES[name]
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a plain state_dict; refusing to load it")

        def persistent_load(self, pid):
            kind, dtype, key, _location, _numel = pid
            assert kind == "storage"
            return zf.read(f"{prefix}data/{key}"), dtype

    return Unpickler(io.BytesIO(zf.read(pkl))).load()


WRAPPERS = ("state_dict", "model_state_dict", "model", "net", "network")


def unwrap(obj, src):
    """The state_dict inside a checkpoint: the object itself, or the first wrapper key holding a dict of tensors."""
    if not isinstance(obj, dict):
        sys.exit(f"{src}: holds a {type(obj).__name__}, not a state_dict; save model.state_dict() (not the model object)")
    for key in WRAPPERS:
        if isinstance(obj.get(key), dict) and any(k.endswith(".weight") for k in obj[key]):
            return obj[key]
    return obj


def main(src, dst):
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        ckpt = unwrap(torch.load(src, map_location="cpu", weights_only=True), src)
        sd = {k: v.detach().cpu().numpy() for k, v in ckpt.items() if isinstance(v, torch.Tensor)}
    else:
        if not zipfile.is_zipfile(src):
            sys.exit(f"{src}: not a zip archive, so not torch.save's format since PyTorch 1.6; it is either PyTorch's legacy "
                     "(pre-1.6) format, which only torch can read (pip install torch, then re-run), or not a PyTorch checkpoint")
        sd = {k: v for k, v in unwrap(load_without_torch(src), src).items() if isinstance(v, np.ndarray)}
    # DataParallel / DistributedDataParallel save "module.<name>".
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    missing = [k for k in SHAPES if k not in sd]
    if missing:
        sys.exit(f"{src}: missing tensors {missing}; is this the paper's Net state_dict?")
    for k, shape in SHAPES.items():
        if tuple(sd[k].shape) != shape:
            sys.exit(f"{src}: tensor '{k}' has shape {tuple(sd[k].shape)}, expected {shape}")
    save_file({k: np.ascontiguousarray(sd[k], dtype=np.float32) for k in SHAPES}, dst)
    print(f"wrote {dst}: {len(SHAPES)} tensors")


if __name__ == "__main__":
    main(*sys.argv[1:3])
