#!/usr/bin/env bash
# Interop with what PyTorch writes: every file in tests/fixtures/torch/ (torch.onnx.export
# of small MLPs and CNNs, opsets 13 and 17) imports into shrink, and shrink's outputs equal
# ONNX Runtime's on the same inputs (largest |ort - shrink| / (1 + |ort|) below 1e-4).
# Where Debian's python3-torch is installed the files are first made again with
# tests/fixtures/torch/export.py and must be byte-identical to the committed ones; where it
# is not, the committed files are checked as they are (and missing ones fail the test).
#   torch_exports.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd)
fixtures="$source/tests/fixtures/torch"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SHRINK_LEDGER=off SHRINK_CACHE=off

names=(mlp cnn residual squeeze_excite gelu_forms)
bad=0
if /usr/bin/python3 -c 'import torch' 2> /dev/null; then
  /usr/bin/python3 "$fixtures/export.py" "$work/regenerated" > "$work/export.log" 2>&1 ||
    { echo "torch-export: tests/fixtures/torch/export.py failed:"; cat "$work/export.log"; exit 1; }
  for f in "$work"/regenerated/*.onnx; do
    cmp -s "$f" "$fixtures/$(basename "$f")" ||
      { echo "torch-export: $(basename "$f") differs from what export.py makes now: run tests/fixtures/torch/export.py and commit"; bad=1; }
  done
  echo "torch-export: python3-torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') made the files again: $(ls "$work"/regenerated/*.onnx | wc -l) compared"
else
  echo "torch-export: python3-torch is not installed: checking the committed exports"
fi

# shellcheck source=install_ort.sh
. "$source/tests/interop/install_ort.sh" "$build"
for name in "${names[@]}"; do
  for opset in 13 17; do
    model="$fixtures/$name-opset$opset.onnx"
    [ -f "$model" ] || { echo "torch-export: $model is missing (tests/fixtures/torch/export.py makes it)"; bad=1; continue; }
    out="$work/$name-$opset"
    mkdir -p "$out"
    "$build/bin/shrink_forward" "$model" 16 "$opset" "$out" || { echo "torch-export: $name opset $opset does not import"; bad=1; continue; }
    result=$(node "$source/tests/interop/ort_compare.js" "$model" "$out")
    python3 - "$name" "$opset" "$result" <<'PY' || bad=1
import json, sys
name, opset, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ok = r["max_difference"] < 1e-4
print(f"torch-export {name} opset {opset}: {r['rows']} rows, {r['outputs']} outputs, largest difference from ONNX Runtime "
      f"{r['max_difference']:.2e} {'ok' if ok else 'DIFFERS'}")
sys.exit(0 if ok else 1)
PY
  done
done
exit "$bad"
