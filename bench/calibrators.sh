#!/usr/bin/env bash
# The activation calibrators side by side: W8A8 on the reference LM (perplexity on the
# held-out KJV text) and the reference CNN (Fashion-MNIST test accuracy), each with the
# input ranges of calibrator.minmax, .percentile (99.99), .mse and .entropy, in one run
# each (docs/benchmarks.md, "Activation calibrators"). Needs the reference models
# (scripts/make-model).
#   bench/calibrators.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for r in lm cnn; do
  # The ledger is off: a figure measured here never comes from an earlier run.
  SHRINK_LEDGER=off "$build/bin/shrink" run "$root/bench/calibrators-$r.yaml" --out "$out/$r" --no-cache -q || [ $? = 4 ]
  python3 - "$out/$r/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
metric = r["baseline"]["metric"]
print(f"{r['recipe']}: baseline {metric} {r['baseline']['value']:.4f}")
for e in r["results"]:
    print(f"  {e['stage']:12} {metric} {e['value']:.4f}  retention {e['retention']:.4f}")
PY
done
