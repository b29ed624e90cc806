#!/bin/sh
# scripts/check-layers refuses what it must: an include that runs up a layer, one into no
# layer, a cycle in the declared uses, a plugin that includes the host or another plugin's
# files (a shared kernel library's are fine). Each case is a
# tiny tree in a temporary directory; a clean tree passes.
set -eu
check="$1/scripts/check-layers"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT

tree() {  # tree NAME: a clean two-layer framework and one plugin
    rm -rf "$t/$1"
    mkdir -p "$t/$1/framework/low" "$t/$1/framework/high" "$t/$1/plugins/p"
    echo '#include "low/a.hpp"' > "$t/$1/framework/high/b.cpp"
    echo '#include <vector>' > "$t/$1/framework/low/a.hpp"
    echo '#include <shrink/plugin.hpp>' > "$t/$1/plugins/p/stage.cpp"
    echo '#include "kernel.hpp"' >> "$t/$1/plugins/p/stage.cpp"
    : > "$t/$1/plugins/p/kernel.hpp"
    printf 'low:\nhigh: low\n' > "$t/$1/layers.txt"
}
expect() {  # expect NAME TEXT: the check fails on tree NAME and says TEXT
    if python3 "$check" --layers "$t/$1/layers.txt" --root "$t/$1" 2> "$t/$1.err"; then
        echo "FAIL: $1 passed the check"; exit 1
    fi
    grep -qF "$2" "$t/$1.err" || { echo "FAIL: $1 did not say '$2':"; cat "$t/$1.err"; exit 1; }
    echo "ok: $1"
}

tree clean
python3 "$check" --layers "$t/clean/layers.txt" --root "$t/clean" || { echo "FAIL: the clean tree was refused"; exit 1; }
echo "ok: clean"

tree up
echo '#include "high/b.hpp"' >> "$t/up/framework/low/a.hpp"
expect up "framework/low/a.hpp:2: layer 'low' includes \"high/b.hpp\" from 'high', which it may not use"

tree nowhere
echo '#include "elsewhere/x.hpp"' >> "$t/nowhere/framework/high/b.cpp"
expect nowhere "framework/high/b.cpp:2: includes \"elsewhere/x.hpp\", which is in no layer"

tree cycle
printf 'low: high\nhigh: low\n' > "$t/cycle/layers.txt"
expect cycle "the layers' uses form a cycle"

tree plugin
echo '#include "model/model.hpp"' >> "$t/plugin/plugins/p/stage.cpp"
expect plugin "plugins/p/stage.cpp:3: a plugin includes \"model/model.hpp\", outside its own folder"

tree shared  # a kernel library several plugins link (a folder that declares no plugin)
mkdir -p "$t/shared/plugins/lib" && echo 'add_library(lib STATIC k.cpp)' > "$t/shared/plugins/lib/CMakeLists.txt"
: > "$t/shared/plugins/lib/k.hpp"
echo '#include "k.hpp"' >> "$t/shared/plugins/p/stage.cpp"
python3 "$check" --layers "$t/shared/layers.txt" --root "$t/shared" || { echo "FAIL: a shared kernel library's header was refused"; exit 1; }
echo "ok: shared"

tree sibling  # but not another plugin's files
mkdir -p "$t/sibling/plugins/q" && echo 'shrink_first_party_plugin(q stage.cpp)' > "$t/sibling/plugins/q/CMakeLists.txt"
: > "$t/sibling/plugins/q/qk.hpp"
echo '#include "qk.hpp"' >> "$t/sibling/plugins/p/stage.cpp"
expect sibling "plugins/p/stage.cpp:3: a plugin includes \"qk.hpp\", outside its own folder"

tree undeclared
mkdir -p "$t/undeclared/framework/extra" && echo '' > "$t/undeclared/framework/extra/c.cpp"
expect undeclared "the directory framework/extra/ is no layer"
