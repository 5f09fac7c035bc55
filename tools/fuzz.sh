#!/usr/bin/env bash
# Fuzzes brainmap's parsers of untrusted bytes with libFuzzer (+ AddressSanitizer).
#   tools/fuzz.sh [SECONDS] [TARGET…]     default: 30 s each, all targets
#   FUZZ_RUNS=N tools/fuzz.sh 0 [TARGET…]  a reproducible smoke run instead: N inputs from seed 1, starting from the
#                                          committed seeds only (what tools/test.sh and CI run)
# Targets: zarray zarrjson ome blosc codecs shardindex bossdb safetensors tiff labelmap modelstate manifest. Seed corpora come from Fixtures/fuzz/TARGET;
# what libFuzzer finds new goes to .build/fuzz/corpus/TARGET (git-ignored); a crash leaves .build/fuzz/crash-* and
# fails the script — turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-system.sh >/dev/null
seconds=${1:-30}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(zarray zarrjson ome blosc codecs shardindex bossdb safetensors tiff labelmap modelstate manifest)
out=.build/fuzz; mkdir -p "$out"
incs=(); for m in CBlosc CCurl CTiff CZstd CZlib CLZ4; do incs+=(-I "Sources/$m"); done
libs=(-lblosc -lcurl -ltiff -lzstd -lz -llz4)
# One binary for every target (chosen at run time by BRAINMAP_FUZZ_TARGET): the parsers' sources built once with
# the sanitizers, rebuilt when any of them changes.
bin="$out/fuzz-all"
mapfile -t srcs < <(find Sources/VolumeStore Sources/Run -name '*.swift' | sort)
srcs+=(Sources/NeuralNet/Safetensors.swift Sources/NeuralNet/Tensor.swift Sources/Pipeline/Training/LabelMapJSON.swift
       Sources/Pipeline/Training/TrainStateMetadata.swift Fuzz/FuzzTargets.swift)
if [ ! -x "$bin" ] || [ -n "$(find "${srcs[@]}" tools/fuzz.sh -newer "$bin" 2>/dev/null | head -1)" ]; then
  echo "building $bin"
  swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name FuzzBrainmap "${incs[@]}" "${srcs[@]}" "${libs[@]}" \
    -o "$bin" > "$out/build.log" 2>&1 || { grep -v "Cannot export local symbol" "$out/build.log"; exit 1; }
fi
for t in "${targets[@]}"; do
  export BRAINMAP_FUZZ_TARGET="$t"
  seeds=(); [ -d "Fixtures/fuzz/$t" ] && seeds=("Fixtures/fuzz/$t")
  if [ -n "${FUZZ_RUNS:-}" ]; then
    corpus=$(mktemp -d); limit=(-runs="$FUZZ_RUNS" -seed=1); echo "fuzzing $t: $FUZZ_RUNS inputs from seed 1"
    export SWIFT_DETERMINISTIC_HASHING=1   # dictionary order feeds coverage: fix it so the run repeats exactly
  else
    corpus="$out/corpus/$t"; mkdir -p "$corpus"; limit=(-max_total_time="$seconds"); echo "fuzzing $t for ${seconds}s"
  fi
  "$bin" "${limit[@]}" -max_len=65536 -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$out/crash-$t-" \
    -print_final_stats=1 "$corpus" "${seeds[@]}" 2>&1 | grep -E "^stat::number_of_executed_units|ERROR|crash|Done" || true
  [ -n "${FUZZ_RUNS:-}" ] && rm -rf "$corpus"
  if ls "$out"/crash-"$t"-* >/dev/null 2>&1; then echo "fuzz-$t found a crash: $(ls "$out"/crash-"$t"-*)"; exit 1; fi
done
