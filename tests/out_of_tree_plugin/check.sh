#!/usr/bin/env bash
# Installs the SDK from the build tree into a temporary prefix, builds the plugin in this
# folder against it with find_package(shrink), and runs a recipe that uses it.
#   check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$source/tests/out_of_tree_plugin" -B "$work/plugin-build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/plugin-build" >/dev/null
test -f "$work/plugin-build/libthreshold_pruner.so"

cat > "$work/recipe.yaml" <<YAML
version: 1
name: out-of-tree
model: $source/models/fmnist-mlp.safetensors
data:
  evaluation: { dataset: fashion-mnist, split: test, samples: 2000 }
budget: { metric: accuracy, max_drop: 0.05 }
stages:
  - { id: prune, use: pruner.threshold, params: { threshold: 0.005 } }
  - { id: eval, use: evaluator.accuracy }
YAML
SHRINK_PLUGIN_PATH="$work/plugin-build" "$build/bin/shrink" describe pruner.threshold | grep -q "example-threshold-pruner 1.0.0"
SHRINK_LEDGER=off SHRINK_CACHE=off SHRINK_PLUGIN_PATH="$work/plugin-build" "$build/bin/shrink" run "$work/recipe.yaml" --out "$work/run" --quiet
grep -q '"weights_pruned"' "$work/run/report.json"
echo "out-of-tree plugin: built against the installed SDK, loaded, and ran"
