#!/usr/bin/env bash
# The benchmark runs behind docs/ and benchmarks/results/, one CPU-heavy job at a time (2 cores).
# Usage: bash benchmarks/queue.sh   (repository root, phasefit installed)
set -uo pipefail
mkdir -p benchmarks/results
log() { echo "$(date +%H:%M:%S) $*"; }
log "recipes smoke";       bash benchmarks/recipes_smoke.sh runs/recipes-smoke > benchmarks/results/recipes_smoke.md
log "contrastive massive"; bash benchmarks/contrastive_massive.sh runs/contrastive-massive > benchmarks/results/contrastive_massive.md
log "few-shot sst2"
phasefit few-shot --data ../shared/data/sst2 --recipes ft scl 3phase --sizes 20 100 --draws 3 --seeds 0 \
  --output runs/fewshot-sst2 --set data.max_length=64 --quiet > runs/fewshot-sst2.log 2>&1
cp runs/fewshot-sst2/summary.md benchmarks/results/fewshot_sst2.md
log "cpu-small grid"
phasefit experiment --config configs/cpu-small.yaml --output runs/cpu-small --quiet > runs/cpu-small.log 2>&1
log "done"
