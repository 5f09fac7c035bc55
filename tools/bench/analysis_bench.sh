#!/usr/bin/env bash
# brainmap's PCA, NMF and GMM against scikit-learn on the 64-d features of one full-size slice (1420×5805), in the same
# run, each pair back to back: time, peak RSS and the achieved objective. PCA runs ROUNDS interleaved rounds; NMF and
# GMM one (scikit-learn takes minutes and ~12 GB there). Needs a trained model (tools/demo.sh makes one):
#   tools/bench/analysis_bench.sh [DEMO_OUT (default demo-out)] [ROUNDS (default 3)] [NMF_ITER for batch NMF (default 50)]
set -euo pipefail
cd "$(dirname "$0")/../.."
demo=${1:-demo-out}; rounds=${2:-3}; nmf_iter=${3:-50}
bin=.build/release/brainmap; py=.venv/bin/python
[ -x "$bin" ] || swift build -c release --product brainmap
[ -f "$demo/model.safetensors" ] || { echo "no $demo/model.safetensors: run tools/demo.sh first"; exit 1; }
run=${BENCH_DIR:-/tmp/brainmap-bench-analysis}/run.zarr
if [ ! -f "$run/labels/3.0.0" ]; then
  echo "predicting slice 3 of $demo/phantom.zarr at stride 1 into $run …"
  $bin predict --volume "$demo/phantom.zarr/raw" --model "$demo/model.safetensors" --out "$run" --slices 3 --quiet --memory-budget 2GiB
fi
mine() {  # a brainmap command's closing line → "seconds rss_mib"
  "$@" --quiet | tail -1 | sed -E 's/^([0-9.]+) s, peak RSS ([0-9.]+) (MiB|GiB).*/\1 \2 \3/' | awk '{print $1 " s, " ($3=="GiB" ? $2*1024 : $2) " MiB"}'
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
for r in $(seq 1 "$rounds"); do
  rm -rf "$run/analysis" "$run/pca"
  echo "PCA round $r: brainmap $(mine $bin factorize "$run" --method pca --k 15 --slices 3), explained $(json "$run/analysis/pca.json" "sum(d['explained_variance_ratio'])")"
  echo "PCA round $r: sklearn  $($py tools/bench/analysis_peer.py "$run" 3 pca)"
done
rm -rf "$run/analysis" "$run/nmf" "$run/clusters"
echo "NMF: brainmap $(mine $bin factorize "$run" --method nmf --k 15 --slices 3), ½‖X−WH‖²/row $(json "$run/analysis/nmf.json" "d['objective_per_pass'][-1]/d['rows']")"
echo "NMF: sklearn MiniBatchNMF $($py tools/bench/analysis_peer.py "$run" 3 minibatch-nmf)"
echo "NMF: sklearn NMF cd, max_iter $nmf_iter $($py tools/bench/analysis_peer.py "$run" 3 nmf "$nmf_iter")"
echo "GMM: brainmap $(mine $bin cluster "$run" --k 4 --slices 3), mean log-likelihood $(json "$run/analysis/clusters.json" "d['mean_log_likelihood_per_iteration'][-1]") after $(json "$run/analysis/clusters.json" "d['iterations']") iterations"
echo "GMM: sklearn $($py tools/bench/analysis_peer.py "$run" 3 gmm)"
