#!/usr/bin/env python3
"""PyTorch peer for `brainmap bench train`: the paper's network in its valid134 form (conv1/conv2 unpadded on a
134x134 window), batch B, dropout 0.3, cross-entropy, Adam lr 1e-4, from the initial weights and patches in BATCH
(the same safetensors brainmap trains from). Prints "patches/s R" over N minibatches after one warm-up minibatch.

  train_peer.py BATCH.safetensors B N THREADS
"""
import sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7)
        self.conv2 = nn.Conv2d(16, 32, 5)
        self.conv3 = nn.Conv2d(32, 64, 3)
        self.conv4 = nn.Conv2d(64, 128, 3)
        self.fc1 = nn.Linear(4608, 1024)
        self.fc2 = nn.Linear(1024, 64)
        self.fc3 = nn.Linear(64, 6)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.max_pool2d(F.relu(conv(x)), 2)
        x = self.drop(torch.flatten(x, 1))
        x = self.drop(F.relu(self.fc1(x)))
        x = self.drop(self.fc2(x))
        return self.fc3(x)


def main(path, b, n, threads):
    b, n = int(b), int(n)
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    d = load_file(path)
    net = Net()
    net.load_state_dict({k: v for k, v in d.items() if k.startswith(("conv", "fc"))})
    images = d["images"][:, None].expand(-1, 3, -1, -1).contiguous()
    labels = d["labels"].long()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    net.train()
    t0 = time.perf_counter()
    for i in range(n + 1):
        if i == 1:
            t0 = time.perf_counter()
        x, y = images[i * b:(i + 1) * b], labels[i * b:(i + 1) * b]
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
    print(f"patches/s {n * b / (time.perf_counter() - t0):.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
