#!/usr/bin/env bash
# Crash safety, as a user meets it:
#  1. a run killed with SIGKILL in the middle of a stage leaves no file that looks
#     complete but is not, and `shrink run --resume` finishes it with the same bytes as
#     an uninterrupted run;
#  2. a finished run directory is not overwritten unless --force;
#  3. a disk that fills up (simulated with ulimit -f) fails the run with the path named,
#     exit 3, and nothing written before it lost.
#   crash_safety.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd) source=$(cd "$2" && pwd)
shrink="$build/bin/shrink"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SHRINK_LEDGER=off SHRINK_CACHE=off SHRINK_PLUGIN_PATH="$build/tests/fixture-plugins/contracts"
fail() { echo "FAILED: $*" >&2; exit 1; }

cat > "$work/r.yaml" <<YAML
version: 1
name: crash
seed: 7
model: $source/models/fmnist-mlp.safetensors
data:
  calibration: { dataset: fashion-mnist, split: train, samples: 128 }
  evaluation: { dataset: fashion-mnist, split: test, samples: 1000 }
budget: { metric: accuracy, max_drop: 0.05 }
stages:
  - { id: prune, use: pruner.magnitude, params: { sparsity: 0.5, scope: global } }
  - { id: slow, use: pruner.slow, params: { seconds: 3 } }
  - { id: calib, use: calibrator.minmax }
  - { id: int8, use: quantizer.rtn, params: { activation_bits: 8 } }
  - { id: eval, use: evaluator.accuracy }
YAML

# 1. Kill in the middle of 'slow', then resume.
"$shrink" run "$work/r.yaml" --out "$work/whole" --threads 2 -q
"$shrink" run "$work/r.yaml" --out "$work/killed" --threads 2 > "$work/killed.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "\[slow\] sleeping" "$work/killed.log" 2>/dev/null && break; sleep 0.1; done
grep -q "\[slow\] sleeping" "$work/killed.log" || fail "the run never reached the slow stage"
kill -9 $pid
wait $pid 2>/dev/null || true
[ ! -e "$work/killed/report.json" ] || fail "a killed run left a report"
[ -z "$(ls "$work/killed/models")" ] || fail "a killed run left a model: $(ls "$work/killed/models")"
for f in $(find "$work/killed" -name '*.safetensors'); do "$shrink" verify "$f" > /dev/null || fail "$f looks complete but is not"; done
"$shrink" run --resume "$work/killed" > "$work/resume.log" 2>&1 || fail "resume failed: $(cat "$work/resume.log")"
grep -q "stage prune (pruner.magnitude): reused from the run's checkpoint" "$work/resume.log" || fail "resume recomputed a finished stage"
cmp "$work/whole/models/int8.safetensors" "$work/killed/models/int8.safetensors" || fail "resumed bytes differ from an uninterrupted run"
"$shrink" run --resume "$work/killed" | grep -q "already finished" || fail "resuming a finished run did something"
echo "kill -9 mid-stage, then --resume: same bytes as an uninterrupted run"

# A run whose inputs changed is not resumed on the new ones.
cp "$source/models/fmnist-mlp.safetensors" "$work/model.safetensors"
sed "s#model: .*#model: $work/model.safetensors#" "$work/r.yaml" > "$work/r2.yaml"
"$shrink" run "$work/r2.yaml" --out "$work/changed" --threads 2 > "$work/changed.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "\[slow\] sleeping" "$work/changed.log" 2>/dev/null && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null || true
"$shrink" train -q --epochs 1 --train-samples 500 --out "$work/model.safetensors"
if "$shrink" run --resume "$work/changed" 2> "$work/changed-resume.log"; then fail "resumed on a changed model"; fi
grep -q "cannot resume: the run's inputs changed" "$work/changed-resume.log" || fail "no reason given: $(cat "$work/changed-resume.log")"
echo "a run is not resumed on changed inputs"

# 2. A finished run is not overwritten without --force.
if "$shrink" run "$work/r.yaml" --out "$work/whole" -q 2> "$work/force.log"; then fail "overwrote a finished run"; fi
grep -q "holds a finished run" "$work/force.log" || fail "no reason given: $(cat "$work/force.log")"
sha=$(sha256sum < "$work/whole/models/int8.safetensors")
"$shrink" run "$work/r.yaml" --out "$work/whole" --threads 2 -q --force
[ "$sha" = "$(sha256sum < "$work/whole/models/int8.safetensors")" ] || fail "--force run gave other bytes"
echo "a finished run is kept unless --force"

# 3. The disk fills up: ulimit -f caps file size (and SIGXFSZ is ignored so write() fails).
set +e
(ulimit -f 300; trap '' XFSZ; exec "$shrink" run "$work/r.yaml" --out "$work/full" -q) > "$work/full.log" 2>&1
code=$?
set -e
[ $code -eq 3 ] || fail "disk full: exit $code, expected 3: $(cat "$work/full.log")"
grep -q "$work/full/.*: error: cannot write: File too large" "$work/full.log" || fail "disk full: path not named: $(cat "$work/full.log")"
python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$work/full/manifest.json" || fail "disk full: the manifest was lost"
cmp -s "$work/full/recipe.yaml" "$work/whole/recipe.yaml" || fail "disk full: the recipe copy was lost"
echo "disk full: exit 3, the path named, earlier files intact"
