#!/usr/bin/env bash
# shrink's CPU engine against ONNX Runtime (onnxruntime-node) on the same model, exported
# to ONNX: time per batch at batch 1 and 256 on 2 threads, and shrink's throughput as a
# multiple of ONNX Runtime's.
#   bench/compare_runtime.sh [MODEL]   (default: models/fmnist-mlp.safetensors, or an .onnx
#   such as models/fmnist-cnn.onnx; run after a build)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/fmnist-mlp.safetensors}
ort=build/interop
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
  npm install --prefix "$ort" --no-audit --no-fund --ignore-scripts --loglevel=error onnxruntime-node@1.30.0 > /dev/null
fi
onnx=$(mktemp --suffix .onnx)
trap 'rm -f "$onnx"' EXIT
case "$model" in
  *.onnx) cp "$model" "$onnx" ;;
  *) build/bin/shrink export "$model" --out "$onnx" > /dev/null ;;
esac
ours=$(build/bin/bench_runtime "$model" 2)
shape=$(echo "$ours" | python3 -c 'import json, sys; print(json.loads(sys.stdin.readline())["input_shape"])')
{ echo "$ours" | tail -n +2; NODE_PATH="$ort/node_modules" node bench/ort_runtime.js "$onnx" "$shape"; } | python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin]
for b in (1, 256):
    s = next(r for r in rows if r["engine"] == "shrink" and r["batch"] == b)
    o = next(r for r in rows if r["engine"] == "onnxruntime" and r["batch"] == b)
    us_s, us_o = s["us_per_batch"], o["us_per_batch"]
    print("batch %3d: shrink %8.2f us, ONNX Runtime %8.2f us, shrink/ORT throughput %.2fx" % (b, us_s, us_o, us_o / us_s))
'
