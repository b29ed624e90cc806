#!/usr/bin/env bash
# The post-training quantization experiments (issue 18), each recipe in one run on the
# reference models (scripts/make-model makes them), the ledger and stage cache off so every
# figure is measured here (docs/benchmarks.md, "Activation calibrators", "GPTQ and AWQ",
# "SmoothQuant", "NF4 and k-means", "Mixed precision"):
#   bench/calibrators-lm.yaml, -cnn.yaml  W8A8 with the input ranges of calibrator.minmax,
#                                         .percentile, .mse and .entropy
#   bench/gptq-lm.yaml                    RTN, GPTQ and AWQ at 4 and 3 bits, groups of 128
#   bench/gptq-cnn.yaml                   the same on the reference CNN's linear layers, 4 to 2 bits
#   bench/smoothquant-lm.yaml             W8A8 with and without transform.smoothquant
#   bench/codebook-lm.yaml                NF4 and k-means against int4 RTN
#   bench/mixed-lm.yaml                   mixed precision (analyzer.sensitivity, quantizer.mixed)
#                                         against uniform int4 RTN
#   bench/ptq_experiments.sh [BUILD_DIR] [RECIPE...]   (default: all seven)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
shift || true
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=("$root/bench/calibrators-lm.yaml" "$root/bench/calibrators-cnn.yaml" "$root/bench/gptq-lm.yaml"
                                "$root/bench/gptq-cnn.yaml" "$root/bench/smoothquant-lm.yaml" "$root/bench/codebook-lm.yaml"
                                "$root/bench/mixed-lm.yaml")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in "${recipes[@]}"; do
  name=$(basename "$r" .yaml)
  SHRINK_LEDGER=off "$build/bin/shrink" run "$r" --out "$out/$name" --no-cache -q || [ $? = 4 ]
  python3 - "$out/$name/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
metric, base = r["baseline"]["metric"], r["baseline"]["value"]
print(f"{r['recipe']}: baseline {metric} {base:.4f}")
for e in sorted(r["results"], key=lambda e: e["stage"]):
    change = (e["value"] / base - 1) * 100
    print(f"  {e['stage']:18} {metric} {e['value']:.4f}  ({change:+.2f}%)  {e['size_bytes']} bytes")
PY
done
