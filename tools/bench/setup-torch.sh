#!/usr/bin/env bash
# Makes .venv-torch with a CPU-only PyTorch, the peer of `brainmap bench train` (kept out of .venv and CI: large).
# Uses a local wheel if pip's find-links has one, else PyTorch's CPU index (~200 MB, no CUDA).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x .venv-torch/bin/python ] || python3 -m venv .venv-torch
if ! .venv-torch/bin/python -c "import torch" 2>/dev/null; then
  .venv-torch/bin/pip install -q numpy safetensors
  links=$(.venv-torch/bin/pip config get global.find-links 2>/dev/null || true)
  wheel=$(ls "${links:-/nonexistent}"/torch-*+cpu-*.whl 2>/dev/null | tail -1 || true)
  if [ -n "$wheel" ]; then .venv-torch/bin/pip install -q "$wheel"
  else .venv-torch/bin/pip install -q torch --index-url https://download.pytorch.org/whl/cpu; fi
fi
.venv-torch/bin/python -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())"
