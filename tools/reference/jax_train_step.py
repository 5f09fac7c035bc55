#!/usr/bin/env python3
"""Independent reference for brainmap's training step: loss, gradients and one Adam step of the paper's network
family, computed by JAX's autodiff in float64 (so the reference's own rounding is negligible next to brainmap's
float32).

  jax_train_step.py IN.safetensors OUT.safetensors

IN holds the parameters under PyTorch's state_dict names, `images` (n, H, W) gray in [0, 1] (copied into the
conv1 input channels, as the method does), `labels` (n,) as floats, `masks` (n, D) dropout keep scales (0 or 1/(1-p))
for the inputs of fc1, fc2, … in order, and `pads` (one per conv layer), `relu` (one per fc layer). OUT gets `loss`,
`grad.<name>` and `adam.<name>` (parameters after one torch.optim.Adam step, lr 1e-4, defaults otherwise).
"""
import sys
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
from jax import lax
from safetensors.numpy import load_file, save_file


def forward(params, images, masks, pads, relu, convs, fcs):
    cin = params["conv1.weight"].shape[1]
    h = jnp.repeat(images[:, None, :, :], cin, axis=1)
    for i in range(convs):
        w, b, p = params[f"conv{i+1}.weight"], params[f"conv{i+1}.bias"], int(pads[i])
        h = lax.conv_general_dilated(h, w, (1, 1), [(p, p), (p, p)], dimension_numbers=("NCHW", "OIHW", "NCHW"))
        h = jax.nn.relu(h + b[None, :, None, None])
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    h = h.reshape(h.shape[0], -1)
    off = 0
    for i in range(fcs):
        w, b = params[f"fc{i+1}.weight"], params[f"fc{i+1}.bias"]
        h = h * masks[:, off:off + w.shape[1]]
        off += w.shape[1]
        h = h @ w.T + b
        if relu[i]:
            h = jax.nn.relu(h)
    return h


def main(src, dst):
    d = {k: np.asarray(v, dtype=np.float64) for k, v in load_file(src).items()}
    images, labels, masks = d.pop("images"), d.pop("labels").astype(np.int64), d.pop("masks")
    pads, relu = d.pop("pads"), d.pop("relu")
    params = {k: jnp.asarray(v) for k, v in d.items()}
    convs = sum(1 for k in params if k.startswith("conv") and k.endswith(".weight"))
    fcs = sum(1 for k in params if k.startswith("fc") and k.endswith(".weight"))

    def loss_fn(p):
        logits = forward(p, jnp.asarray(images), jnp.asarray(masks), pads, relu, convs, fcs)
        lse = jax.scipy.special.logsumexp(logits, axis=1)
        return jnp.mean(lse - logits[jnp.arange(len(labels)), labels])

    loss, grads = jax.value_and_grad(loss_fn)(params)
    out = {"loss": np.array([float(loss)], dtype=np.float64)}
    lr, b1, b2, eps = 1e-4, 0.9, 0.999, 1e-8
    for k, g in grads.items():
        g = np.asarray(g)
        m = (1 - b1) * g
        v = (1 - b2) * g * g
        step_size = lr / (1 - b1)
        denom = np.sqrt(v) / np.sqrt(1 - b2) + eps
        out["grad." + k] = g
        out["adam." + k] = np.asarray(params[k]) - step_size * m / denom
    # float32 out (brainmap reads F32): its rounding (6e-8 relative) is far below the tolerances compared against.
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}, dst)


if __name__ == "__main__":
    main(*sys.argv[1:3])
