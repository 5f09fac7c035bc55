#!/usr/bin/env python3
"""Writes real PyTorch checkpoints of the paper's network in the forms people save, for export_weights' tests
(needs torch: run with .venv-torch/bin/python, see tools/bench/setup-torch.sh):
plain.pt (state_dict), wrapped.pt ({"state_dict": sd}), training.pt ({"model_state_dict": sd, "epoch",
"optimizer_state_dict", "loss"} after one Adam step), dataparallel.pt ("module." names), legacy.pt (pre-1.6
format), and ref.safetensors (the tensors they all hold).

  torch_checkpoints.py DIR
"""
import sys
import torch
from safetensors.torch import save_file

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/bench")
from train_peer import Net


def main(d):
    torch.manual_seed(3)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    net(torch.rand(2, 3, 134, 134)).sum().backward()
    opt.step()
    sd = net.state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, f"{d}/ref.safetensors")
    torch.save(sd, f"{d}/plain.pt")
    torch.save({"state_dict": sd}, f"{d}/wrapped.pt")
    torch.save({"epoch": 12, "model_state_dict": sd, "optimizer_state_dict": opt.state_dict(), "loss": 0.3}, f"{d}/training.pt")
    torch.save(torch.nn.DataParallel(net).state_dict(), f"{d}/dataparallel.pt")
    torch.save(sd, f"{d}/legacy.pt", _use_new_zipfile_serialization=False)
    print("torch", torch.__version__)


if __name__ == "__main__":
    main(sys.argv[1])
