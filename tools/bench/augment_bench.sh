#!/usr/bin/env bash
# Does `train --augment standard --balance` generalise better than the paper's recipe under a domain shift, and does
# the anomaly map find a texture no class has? (README: "Training that generalises; anomaly maps".)
#
#   tools/bench/augment_bench.sh [OUTDIR]          # env: SEEDS="1 2 3" EPOCHS=8 PER_CLASS=300 LR=3e-4 STRIDE=4
#
# Data (all full-size 1420×5805 slices, the phantom's own scale):
#   train.zarr    seed 1, 2 slices: training patches from slice 0, validation (model selection) from slice 1;
#   shifted.zarr  seed 2 (other anatomy, textures, noise), with `--shift benchmark` (gamma 1.25, contrast 0.85,
#                 offset +20, extra noise σ 4.5): the held-out domain-shifted test slice;
#   plain.zarr    seed 2 unshifted: the same held-out slice without the shift (separates "other slice" from "shift");
#   odd.zarr      seed 3 with `--anomaly 760,2500,160`: a disc of the egg-crate texture no class has.
# Per seed and recipe: train (same epochs, patches, lr, batch, seed; only --augment/--balance differ), predict
# the test slices densely at stride STRIDE, evaluate (dense accuracy over every annotated predicted pixel), and the
# anomaly map's ROC AUC on odd.zarr. Prints a table and the medians; everything lands in OUTDIR.
set -euo pipefail
B=${BRAINMAP:-.build/release/brainmap}
OUT=${1:-augment-bench}
SEEDS=${SEEDS:-"1 2 3"}; EPOCHS=${EPOCHS:-8}; PER_CLASS=${PER_CLASS:-300}; LR=${LR:-3e-4}; STRIDE=${STRIDE:-4}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
[ -d "$OUT/train.zarr" ] || $B phantom "$OUT/train.zarr" --shape 2,1420,5805 --seed 1 >/dev/null
[ -d "$OUT/shifted.zarr" ] || $B phantom "$OUT/shifted.zarr" --shape 1,1420,5805 --seed 2 --shift benchmark >/dev/null
[ -d "$OUT/plain.zarr" ] || $B phantom "$OUT/plain.zarr" --shape 1,1420,5805 --seed 2 >/dev/null
[ -d "$OUT/odd.zarr" ] || $B phantom "$OUT/odd.zarr" --shape 1,1420,5805 --seed 3 --anomaly 760,2500,160 >/dev/null

for s in $SEEDS; do
  for r in paper augment; do
    m="$OUT/$r-$s.safetensors"
    flags=(); [ "$r" = augment ] && flags=(--augment standard --balance)
    $B train --volume "$OUT/train.zarr/raw" --annotations "$OUT/train.zarr/areas" --train-slices 0 --val-slices 1 \
      --epochs "$EPOCHS" --per-class "$PER_CLASS" --val-per-class 200 --lr "$LR" --seed "$s" --out "$m" --quiet "${flags[@]}" \
      2>&1 | grep -E "best epoch|patches/s" | sed "s/^/$r seed $s: /"
    for t in shifted plain; do
      [ -f "$OUT/$r-$s-$t.zarr/evaluation-labels.json" ] && continue
      $B predict --volume "$OUT/$t.zarr/raw" --model "$m" --out "$OUT/$r-$s-$t.zarr" --stride "$STRIDE" --outputs labels >/dev/null 2>&1
      $B evaluate "$OUT/$r-$s-$t.zarr" --annotations "$OUT/$t.zarr/areas" >/dev/null
    done
    if [ "${ANOMALY:-1}" = 1 ] && [ ! -f "$OUT/$r-$s-odd.zarr/evaluation-anomaly.json" ]; then
      $B predict --volume "$OUT/odd.zarr/raw" --model "$m" --out "$OUT/$r-$s-odd.zarr" --stride "$STRIDE" --outputs labels,anomaly >/dev/null 2>&1
      $B evaluate "$OUT/$r-$s-odd.zarr" --annotations "$OUT/odd.zarr/areas" --anomaly-truth "$OUT/odd.zarr/anomaly" | tail -1
    fi
  done
done

"$PY" - "$OUT" "$SEEDS" <<'EOF'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2].split()
def acc(r, s, t): return json.load(open(f"{out}/{r}-{s}-{t}.zarr/evaluation-labels.json"))["accuracy"]
def auc(r, s):
    try: return json.load(open(f"{out}/{r}-{s}-odd.zarr/evaluation-anomaly.json"))["roc_auc"]
    except FileNotFoundError: return float("nan")
def val(r, s): return json.load(open(f"{out}/{r}-{s}.json"))["best_val_accuracy"]
print("seed | recipe  | val acc | dense acc shifted | dense acc unshifted | anomaly AUC")
gain = []
for s in seeds:
    for r in ("paper", "augment"):
        print(f"{s:>4} | {r:7} | {val(r, s):.4f}  | {acc(r, s, 'shifted'):.4f}            | {acc(r, s, 'plain'):.4f}              | {auc(r, s):.4f}")
    gain.append(acc("augment", s, "shifted") - acc("paper", s, "shifted"))
med = lambda f: statistics.median(f(s) for s in seeds)
print(f"median dense accuracy on the shifted slice: paper {med(lambda s: acc('paper', s, 'shifted')):.4f}, "
      f"augment {med(lambda s: acc('augment', s, 'shifted')):.4f}; gain per seed {[round(g, 4) for g in gain]}, median {statistics.median(gain):+.4f}")
print(f"median unshifted: paper {med(lambda s: acc('paper', s, 'plain')):.4f}, augment {med(lambda s: acc('augment', s, 'plain')):.4f}")
print(f"median anomaly AUC: paper {med(lambda s: auc('paper', s)):.4f}, augment {med(lambda s: auc('augment', s)):.4f}")
EOF
