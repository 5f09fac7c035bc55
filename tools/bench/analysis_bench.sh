#!/usr/bin/env bash
# brainmap's PCA, NMF and GMM against scikit-learn on the 64-d features of one full-size slice (1420×5805), same run,
# interleaved: time, peak RSS and the achieved objective of each. Needs a trained model (tools/demo.sh makes one):
#   tools/bench/analysis_bench.sh [DEMO_OUT (default demo-out)] [ROUNDS (default 3)] [NMF_ITER for sklearn (default 200)]
set -euo pipefail
cd "$(dirname "$0")/../.."
demo=${1:-demo-out}; rounds=${2:-3}; nmf_iter=${3:-200}
bin=.build/release/brainmap; py=.venv/bin/python
[ -x "$bin" ] || swift build -c release --product brainmap
[ -f "$demo/model.safetensors" ] || { echo "no $demo/model.safetensors: run tools/demo.sh first"; exit 1; }
run=${BENCH_DIR:-/tmp/brainmap-bench-analysis}/run.zarr
if [ ! -f "$run/labels/3.0.0" ]; then
  echo "predicting slice 3 of $demo/phantom.zarr at stride 1 into $run …"
  $bin predict --volume "$demo/phantom.zarr/raw" --model "$demo/model.safetensors" --out "$run" --slices 3 --quiet --memory-budget 2GiB
fi
mine() {  # brainmap command → "seconds rss"
  "$@" --quiet | tail -1 | sed -E 's/^([0-9.]+) s, peak RSS ([0-9.]+) (MiB|GiB).*/\1 \2 \3/' | awk '{print $1, ($3=="GiB" ? $2*1024 : $2)}'
}
for r in $(seq 1 "$rounds"); do
  rm -rf "$run/analysis" "$run/pca" "$run/nmf" "$run/clusters"
  echo "round $r:"
  echo "  brainmap pca: $(mine $bin factorize "$run" --method pca --k 15 --slices 3)  $(jq -r '.explained_variance_ratio | add' "$run/analysis/pca.json" 2>/dev/null || python3 -c "import json;print(sum(json.load(open('$run/analysis/pca.json'))['explained_variance_ratio']))")"
  echo "  sklearn  pca: $($py tools/bench/analysis_peer.py "$run" 3 pca)"
  echo "  brainmap nmf: $(mine $bin factorize "$run" --method nmf --k 15 --slices 3)  $(python3 -c "import json;d=json.load(open('$run/analysis/nmf.json'));print(d['objective_per_pass'][-1]/d['rows'])")"
  echo "  sklearn  minibatch-nmf: $($py tools/bench/analysis_peer.py "$run" 3 minibatch-nmf)"
  [ "$r" = 1 ] && echo "  sklearn  nmf (batch, max_iter $nmf_iter): $($py tools/bench/analysis_peer.py "$run" 3 nmf "$nmf_iter")"
  echo "  brainmap gmm: $(mine $bin cluster "$run" --k 4 --slices 3)  $(python3 -c "import json;print(json.load(open('$run/analysis/clusters.json'))['mean_log_likelihood_per_iteration'][-1])")"
  echo "  sklearn  gmm: $($py tools/bench/analysis_peer.py "$run" 3 gmm)"
done
