#!/usr/bin/env bash
# Interop: models shrink exports run in ONNX Runtime (onnxruntime-node) with the same
# top-1 accuracy on the Fashion-MNIST test set as shrink measured, within 0.1 points:
# float, int8 QDQ (with static int8 inputs), pruned, and factorized.
#   check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SHRINK_LEDGER=off SHRINK_CACHE=off

# ONNX Runtime for node, installed like any other set-up step. Its install script would
# fetch GPU binaries from nuget; the CPU binaries are in the npm package itself.
ort="$build/interop"
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
  command -v npm > /dev/null || { echo "interop: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
  mkdir -p "$ort"
  npm install --prefix "$ort" --no-audit --no-fund --ignore-scripts --loglevel=error onnxruntime-node@1.30.0 > /dev/null
fi
export NODE_PATH="$ort/node_modules"

cat > "$work/r.yaml" <<YAML
version: 1
name: interop
model: $source/models/fmnist-mlp.safetensors
data:
  calibration: { dataset: fashion-mnist, split: train, samples: 256 }
  evaluation: { dataset: fashion-mnist, split: test }
stages:
  - { id: calib, use: calibrator.minmax }
  - { id: int8, use: quantizer.rtn, params: { activation_bits: 8 } }
  - { id: eval_int8, use: evaluator.accuracy }
  - { id: pruned, use: pruner.magnitude, after: [], params: { sparsity: 0.5, scope: global } }
  - { id: eval_pruned, use: evaluator.accuracy }
  - { id: svd, use: factorizer.svd, after: [], params: { energy: 0.9 } }
  - { id: eval_svd, use: evaluator.accuracy }
output: { format: onnx }
YAML
"$build/bin/shrink" run "$work/r.yaml" --out "$work/run" -q
"$build/bin/shrink" export "$source/models/fmnist-mlp.safetensors" --out "$work/run/models/float.onnx" > /dev/null

python3 - "$work/run" "$source/tests/interop/ort_accuracy.js" <<'PY'
import json, subprocess, sys
run, script = sys.argv[1], sys.argv[2]
report = json.load(open(f"{run}/report.json"))
measured = {"float": report["baseline"]["value"]}
for e in report["results"]:
    measured[e["path"][-2]] = e["value"]
bad = 0
for name, value in sorted(measured.items()):
    out = subprocess.run(["node", script, f"{run}/models/{name}.onnx"], capture_output=True, text=True, check=True)
    ort = json.loads(out.stdout)["accuracy"]
    ok = abs(ort - value) <= 0.001
    bad += not ok
    print(f"interop {name}: shrink {value:.4f}, ONNX Runtime {ort:.4f} {'ok' if ok else 'DIFFERS'}")
sys.exit(1 if bad else 0)
PY
