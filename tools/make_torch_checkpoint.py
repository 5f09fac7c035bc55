#!/usr/bin/env python3
"""Writes a checkpoint in torch.save's zip layout (archive/data.pkl + archive/data/<key> + archive/version) holding a
random state_dict of the paper's network, without torch, for testing tools/export_weights.py where torch is not
installed. It mirrors what torch.save pickles for a state_dict of float32 CPU tensors.

  make_torch_checkpoint.py OUT.pt SEED [--wrong-shape] [--reference REF.safetensors]   (REF: the same tensors)
      [--wrap state_dict|model_state_dict] [--module-prefix] [--legacy]

--wrap nests the state_dict in a training checkpoint ({"model_state_dict": sd, "epoch": 7, "optimizer_state_dict":
{...}} or {"state_dict": sd}); --module-prefix names tensors as DataParallel does; --legacy writes a bare pickle
stream (PyTorch's pre-1.6 layout starts with one) instead of the zip archive.
"""
import io, pickle, sys, types, zipfile
from collections import OrderedDict
import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from export_weights import SHAPES


class Storage:
    def __init__(self, key, n):
        self.key, self.n = key, n


class FloatStorage:  # pickled by reference as torch.FloatStorage
    pass
FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"


def rebuild(*a):
    pass
rebuild.__module__, rebuild.__qualname__ = "torch._utils", "_rebuild_tensor_v2"


# Stand-in modules so pickle records the same global names torch.save does (torch.FloatStorage,
# torch._utils._rebuild_tensor_v2); only this writer sees them.
_torch, _utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
_torch.FloatStorage, _utils._rebuild_tensor_v2, _torch._utils = FloatStorage, rebuild, _utils
sys.modules.setdefault("torch", _torch); sys.modules.setdefault("torch._utils", _utils)


class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce__(self):
        stride, acc = [], 1
        for s in reversed(self.shape):
            stride.insert(0, acc); acc *= s
        return (rebuild, (self.storage, 0, tuple(self.shape), tuple(stride), False, OrderedDict()))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", obj.n)
        return None


def main(out, seed, wrong=False, reference=None, wrap=None, prefix=False, legacy=False):
    rng = np.random.default_rng(int(seed))
    sd, blobs = OrderedDict(), {}
    for i, (k, shape) in enumerate(SHAPES.items()):
        if wrong and k == "fc1.weight":
            shape = (1024, 4096)
        a = rng.uniform(-0.05, 0.05, size=shape).astype(np.float32)
        blobs[str(i)] = a.tobytes()
        sd[k] = Tensor(Storage(str(i), a.size), shape)
    if reference:
        from safetensors.numpy import save_file
        save_file({k: np.frombuffer(blobs[str(i)], np.float32).reshape(sd[k].shape) for i, k in enumerate(sd)}, reference)
    obj = OrderedDict((("module." if prefix else "") + k, v) for k, v in sd.items())
    if wrap == "model_state_dict":
        obj = {"epoch": 7, "model_state_dict": obj, "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 1e-4}]},
               "loss": 0.25}
    elif wrap:
        obj = {wrap: obj}
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    if legacy:
        with open(out, "wb") as f:
            pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)   # the legacy format's magic number comes first
            f.write(buf.getvalue())
        return
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/version", "3\n")
        for key, b in blobs.items():
            z.writestr(f"archive/data/{key}", b)


if __name__ == "__main__":
    a = sys.argv
    main(a[1], a[2], "--wrong-shape" in a, a[a.index("--reference") + 1] if "--reference" in a else None,
         a[a.index("--wrap") + 1] if "--wrap" in a else None, "--module-prefix" in a, "--legacy" in a)
