#!/usr/bin/env bash
# Paper 002/003 recipes (scl, supcon-ft, simclr-ft) and the ft baseline on a stratified subset of MASSIVE (60 intents).
# Usage: bash benchmarks/contrastive_massive.sh [OUT]   (repository root, phasefit installed; ~10 min on 2 CPU cores)
set -euo pipefail
OUT=${1:-runs/contrastive-massive}
SUBSET=(--set data.max_train_examples=600 --set data.max_validation_examples=300 --set data.max_test_examples=600
        --set data.max_length=32 --set supcon.epochs=2 --set simclr.epochs=2)
# ft and scl fine-tune the encoder: 10 epochs. supcon-ft / simclr-ft keep their recipe's frozen-head schedule (up to
# 100 epochs on cached embeddings, seconds in all).
for recipe in ft scl; do
  phasefit train --data ../shared/data/massive_en --recipe "$recipe" --output "$OUT/$recipe" --quiet --overwrite \
    "${SUBSET[@]}" --set ft.epochs=10 > /dev/null
done
for recipe in supcon-ft simclr-ft; do
  phasefit train --data ../shared/data/massive_en --recipe "$recipe" --output "$OUT/$recipe" --quiet --overwrite \
    "${SUBSET[@]}" > /dev/null
done
python - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| recipe | phases | test accuracy | test macro-F1 | val k-NN before the classifier phase | minutes |")
print("|---|---|---|---|---|---|")
for recipe in ("ft", "scl", "supcon-ft", "simclr-ft"):
    m = json.loads((out / recipe / "metrics.json").read_text())
    knn = m["phases"][0]["validation_knn_accuracy"] if len(m["phases"]) > 1 else m["initial_embeddings"]["validation_knn_accuracy"]
    print(f"| {recipe} | {' → '.join(p['name'] for p in m['phases'])} | {m['test']['accuracy']:.4f} "
          f"| {m['test']['macro_f1']:.4f} | {knn:.4f} | {m['total_seconds'] / 60:.1f} |")
PY
