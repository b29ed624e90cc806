#!/usr/bin/env bash
# Token-id parity with Hugging Face's tokenizers library (tokenizer_parity.js): trains a
# 4096-token vocabulary on the KJV text with shrink, then compares shrink's ids with the
# library's over the whole text and hand-picked Unicode, in GPT-2, Llama 3 and Qwen 2 forms.
#   tokenizer_parity.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The library's prebuilt binaries for every platform are in the npm package itself.
# shellcheck source=install_npm.sh
. "$source/tests/interop/install_npm.sh"
install_npm "$build/interop-tokenizers" tokenizers@0.23.2 -- --ignore-scripts

"$build/bin/shrink" train-tokenizer --kjv --vocab-size 4096 --out "$work/tokenizer.json"
# The text shrink's kjv dataset reads: each verse without its reference.
bible -f "Gen1:1-Rev22:21" | sed 's/^[^ ]* //' > "$work/kjv.txt"
node "$source/tests/interop/tokenizer_parity.js" "$build/bin/shrink" "$work/tokenizer.json" "$work/kjv.txt" "$work"
