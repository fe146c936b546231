#!/usr/bin/env bash
# Every recipe of paper 000 trains through the CLI on real data: SNIPS built-in (defaults) and a stratified
# subset of 20 Newsgroups with hierarchical labels (levels from the dots, padded to 5 levels).
# Usage: bash benchmarks/recipes_smoke.sh [OUT]   (from the repository root, with phasefit installed)
set -euo pipefail
OUT=${1:-runs/recipes-smoke}
RECIPES="3phase joint dae-ft cl-ft ft 3phase-no-imb 3phase-extra-imb"
# Short phases: this checks that every recipe trains on real data, it is not a tuned comparison (see `phasefit run`
# and configs/ for those).
SHORT=(--set dae.epochs=1 --set cl.epochs=1 --set joint.epochs=1 --set ft.epochs=5 --set plots=false)
NG=(--set data.label_separator=. --set data.label_depth=5 --set data.max_train_examples=200
    --set data.max_eval_examples=100 --set data.max_length=64 --set cl.max_pairs=400)
for recipe in $RECIPES; do
  phasefit train --data ../shared/data/snips_builtin --recipe "$recipe" --output "$OUT/snips/$recipe" --quiet \
    --overwrite "${SHORT[@]}" > /dev/null
  phasefit train --data ../shared/data/20newsgroups --recipe "$recipe" --output "$OUT/20ng/$recipe" --quiet \
    --overwrite "${SHORT[@]}" "${NG[@]}" > /dev/null
done
python - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| data | recipe | phases | train / val / test | test accuracy | test macro-F1 | minutes |")
print("|---|---|---|---|---|---|---|")
for data in ("snips", "20ng"):
    for run in sorted((out / data).iterdir()):
        m = json.loads((run / "metrics.json").read_text())
        phases = " → ".join(p["name"] for p in m["phases"])
        sizes = "/".join(str(m["sizes"][k]) for k in ("train", "validation", "test"))
        print(f"| {data} | {m['recipe']} | {phases} | {sizes} | {m['test']['accuracy']:.4f} "
              f"| {m['test']['macro_f1']:.4f} | {m['total_seconds'] / 60:.1f} |")
PY
