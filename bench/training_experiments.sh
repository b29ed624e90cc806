#!/usr/bin/env bash
# The training stages against their baselines (pipelines/training-experiments.yaml) over
# several seeds: test accuracy per branch, mean and standard deviation, and each training
# stage's gain over its baseline. Run after a build and scripts/make-model.
#   bench/training_experiments.sh [SEEDS...]   (default: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for s in "${seeds[@]}"; do
  echo "seed $s ..." >&2
  SHRINK_CACHE=off build/bin/shrink run pipelines/training-experiments.yaml --set seed="$s" --threads 2 -q \
    --out "$out/seed$s" || [ $? -eq 4 ]  # 4: some branch over the (wide) budget; its figure still counts
done
python3 - "$out" "${seeds[@]}" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
acc = {}
for s in seeds:
    report = json.load(open(f"{out}/seed{s}/report.json"))
    acc.setdefault("baseline (reference MLP)", []).append(report["baseline"]["value"])
    for r in report["results"]:
        acc.setdefault(r["stage"].removeprefix("eval_"), []).append(r["value"])
def line(name):
    v = acc[name]
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"| {name} | {statistics.mean(v):.4f} | {sd:.4f} | " + " ".join(f"{x:.4f}" for x in v) + " |"
print(f"test accuracy over seeds {' '.join(seeds)} (Fashion-MNIST, 10,000 images)\n")
print("| branch | mean | sd | per seed |\n| --- | --- | --- | --- |")
for name in acc: print(line(name))
print()
for a, b, what in [("kd_t4", "labels_only", "distillation T 4 vs labels only"), ("kd_t1", "labels_only", "distillation T 1 vs labels only"),
                   ("iter90", "oneshot90", "iterative 90% vs one-shot 90%"), ("iter90", "oneshot90_ft", "iterative 90% vs one-shot 90% + 3 epochs"),
                   ("qat4", "rtn4", "4-bit QAT vs 4-bit RTN")]:
    d = [x - y for x, y in zip(acc[a], acc[b])]
    print(f"{what}: {statistics.mean(d):+.4f} (per seed " + " ".join(f"{x:+.4f}" for x in d) + ")")
PY
