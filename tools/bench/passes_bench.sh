#!/usr/bin/env bash
# The analysis passes as map tasks and reduces (`--pass map --shard I/N`, `--pass reduce/N`) on the 64-d features of
# one full-size phantom slice (1420×5805, random weights, predicted at --stride, default 1): N map tasks (default:
# every block its own), run one after another as Slurm would start them. Per pass it reports, as medians over
# the map tasks, a task's wall time (process start to exit, measured here), its blocks' share (the task reports it)
# and so its overhead (start, open the run, read the last reduce's state, publish); and the reduce's wall time.
# Passes: PCA (moments, projections), NMF --passes 1 (moments + sample, coefficients), GMM on it --max-iter 2 (sample,
# 2 EM iterations, assignments). Then ROUNDS interleaved rounds of PCA both ways — every map task and reduce one after
# another, against one process — for what splitting costs in all (medians). Release build.
#   tools/bench/passes_bench.sh [STRIDE (default 1)] [ROUNDS (default 3)] [N (default: the slice's blocks)]
set -euo pipefail
cd "$(dirname "$0")/../.."
stride=${1:-1}; rounds=${2:-3}
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
tasks=${3:-$blocks}
echo "slice 1420×5805 at stride $stride: $blocks blocks, $tasks map tasks a pass; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

now() { date +%s.%N; }
med() { sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'; }
# One step to completion: per pass, every map task, then the reduce; a line per pass. A new --seed each time: a new
# generation of the step (the jobs of a plan take no --restart).
seed=$(date +%s)
step() {
  local name=$1; shift
  set -- "$@" --seed "$seed"
  local pass=0
  while :; do
    pass=$((pass + 1))
    : > "$dir/walls"; : > "$dir/works"
    local tag=""
    for ((i = 0; i < tasks; i++)); do
      local t0 out
      t0=$(now)
      out=$("$bin" "$@" --quiet --pass map --shard "$i/$tasks" 2>&1) || { echo "$out"; exit 1; }
      echo "$(now) - $t0" | bc -l >> "$dir/walls"
      if [[ $out =~ published\ \'([^\']+)\'\ \(its\ blocks:\ ([0-9.]+)\ s\) ]]; then tag=${BASH_REMATCH[1]}; echo "${BASH_REMATCH[2]}" >> "$dir/works"
      elif [[ $out == *"up to date"* ]]; then return; else echo "unexpected: $out"; exit 1; fi
    done
    local t0 out reduce
    t0=$(now)
    out=$("$bin" "$@" --quiet --pass reduce/"$tasks" 2>&1) || { echo "$out"; exit 1; }
    reduce=$(echo "$(now) - $t0" | bc -l)
    local wall work
    wall=$(med < "$dir/walls"); work=$(med < "$dir/works")
    total=$(echo "$total + $(paste -sd+ "$dir/walls") + $reduce" | bc -l)
    printf "%-8s pass %d %-16s map task: wall %.3f s, blocks %.3f s, overhead %.3f s (%.0f%% of the blocks); all %d tasks %.1f s; reduce %.3f s\n" \
      "$name" "$pass" "$tag" "$wall" "$work" "$(echo "$wall - $work" | bc -l)" "$(echo "100 * ($wall - $work) / $work" | bc -l)" \
      "$tasks" "$(paste -sd+ "$dir/walls" | bc -l)" "$reduce"
  done
}
total=0
step pca factorize "$run" --method pca --k 15
step nmf factorize "$run" --method nmf --k 15 --passes 1
step clusters cluster "$run" --k 4 --max-iter 2

: > "$dir/split"; : > "$dir/one"
for r in $(seq 1 "$rounds"); do
  seed=$(($(date +%s) + r)); total=0
  step pca factorize "$run" --method pca --k 15 > /dev/null
  t0=$(now); "$bin" factorize "$run" --method pca --k 15 --seed "$((seed + 1000))" --quiet > /dev/null; one=$(echo "$(now) - $t0" | bc -l)
  echo "$total" >> "$dir/split"; echo "$one" >> "$dir/one"
  printf "PCA round %d: %d map tasks + reduce per pass, all one after another %.1f s; one process %.1f s\n" "$r" "$tasks" "$total" "$one"
done
printf "PCA median: split %.1f s, one process %.1f s: splitting into %d tasks a pass costs %.0f%% more in all\n" \
  "$(med < "$dir/split")" "$(med < "$dir/one")" "$tasks" "$(echo "100 * ($(med < "$dir/split") / $(med < "$dir/one") - 1)" | bc -l)"
