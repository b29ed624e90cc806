#!/bin/sh
# Peak memory of forking a model state: four RTN variants of one calibrated model
# (bench/fork_memory.yaml) on a synthetic MLP of about 410 MB, against the same recipe on
# the reference MLP (under 1 MB: the process's own baseline: code, libraries, data).
# Target (issue 15): peak <= 1.5 x model size + baseline. Runs with the stage cache off,
# as a first run would. Usage: bench/fork_memory.sh [BUILD_DIR]   (default build)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
shrink=$build/bin/shrink
work=$build/fork-memory
mkdir -p "$work/big" "$work/small"
big=$work/big/model.safetensors
if [ ! -f "$big" ]; then
    echo "making a ~410 MB MLP (784 -> 10240 -> 9216 -> 10, one short epoch) ..."
    "$shrink" train --hidden 10240,9216 --epochs 1 --train-samples 256 --out "$big" -q
fi
ln -sf "$root/models/fmnist-mlp.safetensors" "$work/small/model.safetensors"
[ -f "$root/models/fmnist-mlp.safetensors" ] || "$shrink" train --threads 2 -q
for d in big small; do cp "$root/bench/fork_memory.yaml" "$work/$d/recipe.yaml"; done

# Peak RSS of one run, from the kernel's accounting of the finished child (ru_maxrss).
peak() {
    SHRINK_CACHE=off python3 - "$shrink" "$1" <<'PY'
import resource, subprocess, sys
shrink, d = sys.argv[1], sys.argv[2]
subprocess.run([shrink, "run", d + "/recipe.yaml", "--out", d + "/run", "--force", "-q"], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
PY
}
model_bytes=$(stat -c %s "$big")
base=$(peak "$work/small")
top=$(peak "$work/big")
python3 - "$model_bytes" "$base" "$top" <<'PY'
import sys
model, base, top = (int(x) for x in sys.argv[1:])
mib = lambda b: b / 2**20
print(f"model {mib(model):.0f} MiB; baseline (reference MLP, same recipe) {mib(base):.0f} MiB; "
      f"peak {mib(top):.0f} MiB = baseline + {(top - base) / model:.2f} x model "
      f"(target: <= {mib(base + 1.5 * model):.0f} MiB, baseline + 1.5 x model)")
PY
