#!/usr/bin/env bash
# What the unsupervised path recovers on the demo's held-out slices 3–4 (issue 20, parts 1–2): areas from GMM
# clusters of the first three PCs of the whole slices, and cortical layers from GMM clusters of the NMF embedding of
# cortex (eroded 64 px), for each variant tried; brainmap's ARI and V-measure, the first variant's ARI recomputed by
# scikit-learn from the written array (tools/reference/sklearn_analysis.py cluster-scores). Too slow for CI (each
# variant is a full-size GMM, ~1–3 min; each writes RUN/clusters_bench_* beside the demo's arrays). Needs a finished
# demo (tools/demo.sh):
#   tools/bench/discovery_bench.sh [DEMO_OUT (default demo-out)] [areas|layers|all (default all)]
set -euo pipefail
cd "$(dirname "$0")/../.."
demo=${1:-demo-out}; which=${2:-all}
bin=${BRAINMAP:-.build/release/brainmap}; py=.venv/bin/python
[ -x "$bin" ] || swift build -c release --product brainmap
run=$demo/run.zarr; ph=$demo/phantom.zarr
[ -f "$run/analysis/nmf.json" ] && [ -f "$run/analysis/pca.json" ] || { echo "no finished demo in $demo: run tools/demo.sh first"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
variant() {  # NAME ROIS WHAT… : one clustering into RUN/NAME; prints its scores and time
  local name=$1 rois=$2; shift 2
  local t0; t0=$(date +%s.%N)
  $bin cluster "$run" --name "$name" --rois "$rois" --slices 3:5 --quiet "$@" > /dev/null
  local f=$run/analysis/$name.json
  printf '%-58s ARI %s  V %s  %s s\n' "$*" "$(json "$f" "'%.3f' % d['adjusted_rand_index']")" "$(json "$f" "'%.3f' % d['v_measure']")" \
    "$(python3 -c "import sys; print('%.0f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")"
}
check() {  # NAME ROIS: scikit-learn's ARI from the written array
  echo "  scikit-learn on $run/$1: $(echo "{\"task\": \"cluster-scores\", \"clusters\": \"$run/$1\", \"rois\": \"$2\", \"stride\": $(json "$run/run.json" "d['identity']['stride']"), \"slices\": [3, 4]}" > /tmp/discovery-check.json && $py tools/reference/sklearn_analysis.py /tmp/discovery-check.json)"
}
if [ "$which" != layers ]; then
  echo "areas (GMM, 6 components, predicted pixels of the whole slices; the paper: ARI 0.703)"
  variant clusters_bench_a0 "$ph/areas" --on pca --components 1:3 --k 6
  check clusters_bench_a0 "$ph/areas"
  for s in 8 16 32; do variant clusters_bench_a$s "$ph/areas" --on pca --components 1:3 --k 6 --smooth $s; done
  variant clusters_bench_a15 "$ph/areas" --on pca --k 6 --smooth 16
  for s in 32 64; do variant clusters_bench_ad$s "$ph/areas" --on pca --components 1:3 --k 6 --smooth $s --covariance diag; done
  check clusters_bench_ad64 "$ph/areas"
fi
if [ "$which" != areas ]; then
  echo "layers (GMM, cortex eroded 64 px, NMF k = 15)"
  variant clusters_bench_l0 "$ph/layers" --within CTX --erode 64 --k 4
  check clusters_bench_l0 "$ph/layers"
  for s in 16 32 48; do variant clusters_bench_l$s "$ph/layers" --within CTX --erode 64 --k 4 --smooth $s; done
  variant clusters_bench_l5 "$ph/layers" --within CTX --erode 64 --k 5 --smooth 32
  for a in 64 96 128; do variant clusters_bench_lo$a "$ph/layers" --within CTX --erode 64 --k 4 --smooth $a --smooth-across 16; done
  check clusters_bench_lo96 "$ph/layers"
  # The demo's layers: the oriented mean's leading principal components (3, 4 = the demo's, 5), seeds 1–3 for 4.
  for n in 3 4 5; do variant clusters_bench_lp$n "$ph/layers" --within CTX --erode 64 --k 4 --smooth 96 --smooth-across 16 --principal $n; done
  for seed in 2 3; do variant clusters_bench_lp4s$seed "$ph/layers" --within CTX --erode 64 --k 4 --smooth 96 --smooth-across 16 --principal 4 --seed $seed; done
  check clusters_bench_lp4 "$ph/layers"
  if [ -f "$run/analysis/select-factors.json" ]; then
    picks=$(json "$run/analysis/select-factors.json" "','.join(str(p['factor'] + 1) for p in d['picks'])")
    variant clusters_bench_lsel "$ph/layers" --within CTX --erode 64 --k 4 --smooth 32 --components "$picks"
  fi
fi
