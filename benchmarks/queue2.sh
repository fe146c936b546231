#!/usr/bin/env bash
# Second batch (after benchmarks/queue.sh): the recipe smoke runs and the contrastive MASSIVE runs.
set -uo pipefail
log() { echo "$(date +%H:%M:%S) $*"; }
log "recipes smoke";       bash benchmarks/recipes_smoke.sh runs/recipes-smoke > benchmarks/results/recipes_smoke.md
log "contrastive massive"; bash benchmarks/contrastive_massive.sh runs/contrastive-massive > benchmarks/results/contrastive_massive.md
log "done"
