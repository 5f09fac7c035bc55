#!/usr/bin/env bash
# Do the discovery targets (issue 20: areas from PCs ARI ≥ 0.70, layers from cortex clusters ARI ≥ 0.5) hold across
# models, not just for one? Trains a model per seed with `brainmap demo --seed N` (the demo's defaults plus any
# DEMO_FLAGS, e.g. "--lr-schedule constant" for the paper's constant rate) and tabulates what each found: dense
# accuracy, areas ARI / V-measure, layers ARI / V-measure, the demo's wall time; then the medians and how many seeds
# met each target. Each seed is a full demo (~4–5 min on a quiet machine here); a finished seed directory is read, not re-run.
#   tools/bench/discovery_seeds.sh [OUTDIR (default discovery-seeds)]      # env: SEEDS="1 2 3" DEMO_FLAGS=""
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-discovery-seeds}; seeds=${SEEDS:-"1 2 3"}; flags=${DEMO_FLAGS:-}
bin=${BRAINMAP:-.build/release/brainmap}
[ -x "$bin" ] || swift build -c release --product brainmap
mkdir -p "$out"
for s in $seeds; do
  d=$out/seed$s
  # The report is the demo's last step (a weak model's layer clustering may be skipped: no clusters.json).
  if [ ! -f "$d/run-report/index.html" ]; then
    t0=$(date +%s)
    # shellcheck disable=SC2086
    "$bin" demo --out "$d" --seed "$s" $flags > "$out/seed$s.log" 2>&1 || { echo "seed $s: demo failed, see $out/seed$s.log"; exit 1; }
    echo $(( $(date +%s) - t0 )) > "$d/wall-seconds"
  fi
done
python3 - "$out" $seeds <<'EOF'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
rows = []
for s in seeds:
    d = f"{out}/seed{s}"
    a = json.load(open(f"{d}/run.zarr/analysis/clusters_areas.json"))
    try: l = json.load(open(f"{d}/run.zarr/analysis/clusters.json"))
    except OSError: l = {"adjusted_rand_index": 0.0, "v_measure": 0.0}   # skipped: too little predicted cortex
    acc = json.load(open(f"{d}/run.zarr/evaluation-labels.json"))["accuracy"]
    try: wall = int(open(f"{d}/wall-seconds").read())
    except OSError: wall = None
    rows.append((s, acc, a["adjusted_rand_index"], a["v_measure"], l["adjusted_rand_index"], l["v_measure"], wall))
print(f"{'seed':>4}  {'dense acc':>9}  {'areas ARI / V':>15}  {'layers ARI / V':>15}  {'demo':>6}")
for s, acc, aa, av, la, lv, wall in rows:
    w = f"{wall // 60}:{wall % 60:02d}" if wall is not None else "–"
    print(f"{s:>4}  {acc:9.3f}  {aa:7.3f} / {av:.3f}  {la:7.3f} / {lv:.3f}  {w:>6}")
med = lambda i: statistics.median(r[i] for r in rows)
print(f"median  {med(1):8.3f}  {med(2):7.3f} / {med(3):.3f}  {med(4):7.3f} / {med(5):.3f}")
print(f"areas ARI ≥ 0.70 on {sum(r[2] >= 0.70 for r in rows)} of {len(rows)} models; layers ARI ≥ 0.5 on {sum(r[4] >= 0.5 for r in rows)} of {len(rows)}")
EOF
