#!/usr/bin/env bash
# Interop: models shrink exports run in ONNX Runtime (onnxruntime-node) with the same
# top-1 accuracy on the Fashion-MNIST test set as shrink measured, within 0.1 points:
# float, int8 QDQ (with static int8 inputs), pruned, and factorized; for the reference MLP
# and the reference CNN.
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

# The same stages on each reference model; the CNN is ONNX, fed pixels / 255.
recipe() {  # MODEL PREPROCESS
  cat <<YAML
version: 1
name: interop
model: $1
data:
  calibration: { dataset: fashion-mnist, split: train, samples: 256 }
  evaluation: { dataset: fashion-mnist, split: test }
$2
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
}
recipe "$source/models/fmnist-mlp.safetensors" "" > "$work/mlp.yaml"
recipe "$source/models/fmnist-cnn.onnx" "  preprocess: { scale: 0.00392156862745098 }" > "$work/cnn.yaml"
"$build/bin/shrink" run "$work/mlp.yaml" --out "$work/mlp" -q
"$build/bin/shrink" run "$work/cnn.yaml" --out "$work/cnn" -q
"$build/bin/shrink" export "$source/models/fmnist-mlp.safetensors" --out "$work/mlp/models/float.onnx" > /dev/null
cp "$source/models/fmnist-cnn.onnx" "$work/cnn/models/float.onnx"

python3 - "$work" "$source/tests/interop/ort_accuracy.js" <<'PY'
import json, subprocess, sys
work, script = sys.argv[1], sys.argv[2]
bad = 0
for model, shape in (("mlp", "784"), ("cnn", "1,28,28")):
    report = json.load(open(f"{work}/{model}/report.json"))
    measured = {"float": report["baseline"]["value"]}
    for e in report["results"]:
        measured[e["path"][-2]] = e["value"]
    for name, value in sorted(measured.items()):
        out = subprocess.run(["node", script, f"{work}/{model}/models/{name}.onnx", shape], capture_output=True, text=True, check=True)
        ort = json.loads(out.stdout)["accuracy"]
        ok = abs(ort - value) <= 0.001
        bad += not ok
        print(f"interop {model} {name}: shrink {value:.4f}, ONNX Runtime {ort:.4f} {'ok' if ok else 'DIFFERS'}")
sys.exit(1 if bad else 0)
PY
