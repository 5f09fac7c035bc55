#!/usr/bin/env bash
# The analysis passes as map tasks and reduces (`--pass map --shard I/N`, `--pass reduce/N`) on the 64-d features of
# one full-size phantom slice (1420×5805, random weights, predicted at --stride, default 1): every block its own map
# task (N = the slice's blocks), run one after another as Slurm would start them. Per pass it reports, as medians over
# the map tasks, a task's wall time (process start to exit, measured here), its blocks' share (the task reports it)
# and so its overhead (start, open the run, read the last reduce's state, publish); and the reduce's wall time.
# Passes: PCA (moments, projections), NMF --passes 1 (moments + sample, coefficients), GMM on it --max-iter 2 (sample,
# 2 EM iterations, assignments). Release build.
#   tools/bench/passes_bench.sh [STRIDE (default 1)]
set -euo pipefail
cd "$(dirname "$0")/../.."
stride=${1:-1}
bin=$PWD/.build/release/brainmap
[ -x "$bin" ] || swift build -c release --product brainmap
dir=${BENCH_DIR:-/tmp/brainmap-bench-passes}
mkdir -p "$dir"
# A full-size phantom slice and random weights (bench predict writes both into its scratch directory; no rounds).
[ -f "$dir/w.safetensors" ] || "$bin" bench predict --scratch "$dir" --rounds 0 > /dev/null
run=$dir/run-s$stride.zarr
if [ ! -f "$run/run.json" ]; then
  echo "predicting the slice at stride $stride into $run …"
  "$bin" predict --volume "$dir/bench.zarr/raw" --model "$dir/w.safetensors" --out "$run" --stride "$stride" --quiet --memory-budget 2GiB
fi
blocks=$(cat "$run"/.brainmap/predict-g*/shard-*.log | grep -c '^done ')
echo "slice 1420×5805 at stride $stride: $blocks blocks, one map task each; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

now() { date +%s.%N; }
med() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
# One step to completion: per pass, every map task, then the reduce; a line per pass.
step() {
  local name=$1; shift
  rm -rf "$run/.brainmap/$name-g"* "$run/analysis/$name.json"
  local pass=0
  while :; do
    pass=$((pass + 1))
    : > "$dir/walls"; : > "$dir/works"
    local tag=""
    for ((i = 0; i < blocks; i++)); do
      local t0 out
      t0=$(now)
      out=$("$bin" "$@" --quiet --pass map --shard "$i/$blocks" 2>&1) || { echo "$out"; exit 1; }
      echo "$(now) - $t0" | bc -l >> "$dir/walls"
      if [[ $out =~ published\ \'([^\']+)\'\ \(its\ blocks:\ ([0-9.]+)\ s\) ]]; then tag=${BASH_REMATCH[1]}; echo "${BASH_REMATCH[2]}" >> "$dir/works"
      elif [[ $out == *"up to date"* ]]; then return; else echo "unexpected: $out"; exit 1; fi
    done
    local t0 out reduce
    t0=$(now)
    out=$("$bin" "$@" --quiet --pass reduce/"$blocks" 2>&1) || { echo "$out"; exit 1; }
    reduce=$(echo "$(now) - $t0" | bc -l)
    local wall work
    wall=$(med < "$dir/walls"); work=$(med < "$dir/works")
    printf "%-4s pass %d %-18s map task: wall %.3f s, blocks %.3f s, overhead %.3f s (%.0f%% of the blocks); all %d tasks %.1f s; reduce %.3f s\n" \
      "$name" "$pass" "$tag" "$wall" "$work" "$(echo "$wall - $work" | bc -l)" "$(echo "100 * ($wall - $work) / $work" | bc -l)" \
      "$blocks" "$(paste -sd+ "$dir/walls" | bc -l)" "$reduce"
  done
}
step pca factorize "$run" --method pca --k 15
step nmf factorize "$run" --method nmf --k 15 --passes 1
step clusters cluster "$run" --k 4 --max-iter 2
