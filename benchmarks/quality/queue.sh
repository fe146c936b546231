#!/usr/bin/env bash
# The full CPU-tier quality benchmark, resumable: run it again after a stop and finished runs are reused.
# Chunks go in order of value per CPU minute, so an interrupted benchmark has the headline comparison first:
# SNIPS' cheap methods, section 3's variants on SNIPS, the paper-protocol recipes, SNIPS' other core methods, the
# few-shot SST-2 N=20 cell, SST-2 N=100, MASSIVE, the long-text cells (departure 10's pair
# constructions first), and SNIPS' ablations last (the first pass
# measured them, while the other cells had no run at all). Each chunk ends by
# rewriting results.csv and summary.md. Progress goes to runs/quality/log.txt.
#   nohup bash benchmarks/quality/queue.sh > /dev/null 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# BENCH_SRC: a copy of src/ to run from, so editing the working tree during a long run cannot change it midway
if [[ -n "${BENCH_SRC:-}" ]]; then export PYTHONPATH="$BENCH_SRC${PYTHONPATH:+:$PYTHONPATH}"; fi
mkdir -p runs/quality
core=(ft-frozen probe paper-ft ft scl setfit setfit-body-ft 3phase paper-3phase 3phase-setfit joint)
# a chunk that fails (its traceback is in the log) does not stop the chunks after it: they are other cells
chunk() {
  python benchmarks/quality/run.py --output runs/quality "$@" >> runs/quality/log.txt 2>&1 ||
    echo "[$(date +%H:%M:%S)] chunk failed (exit $?): $*" >> runs/quality/log.txt
}
chunk --cells snips --methods ft-frozen probe paper-ft ft scl
# section 3's variants on their 3 splits before the costlier peers: their comparisons were never measured, while
# the first pass measured the core methods (and the rerun so far reproduces them)
chunk --cells snips --methods 3phase --seeds 0 1 2
chunk --cells snips --methods 3phase-bottleneck-after 3phase-select-epoch supcon-ft supcon-ft-old 3phase-no-balance \
  3phase-aug12 joint joint-1epoch
# the paper-protocol comparisons (section 2) next: paper-joint was never measured, joint only on 3 splits
chunk --cells snips --methods 3phase paper-3phase joint paper-joint
chunk --cells snips --methods 3phase-dae-all-texts 3phase-dae-test-leak  # departure 8, added later than the others
chunk --cells snips --methods "${core[@]}"
chunk --cells sst2-20
chunk --cells sst2-100
chunk --cells massive-400
# departure 10's open test first (docs/method.md, item 10: a prediction and a decision rule written before they
# ran): the two pair constructions on SST-5 and 20 Newsgroups (there a split at a time, so that a stopped session
# leaves both on a split; 3phase-setfit reuses 3phase's cached DAE of the split), then 20 Newsgroups' ft
chunk --cells sst5-400 --methods 3phase 3phase-setfit
chunk --cells 20ng-200 --methods 3phase 3phase-setfit --seeds 0
chunk --cells 20ng-200 --methods 3phase 3phase-setfit --seeds 1
chunk --cells 20ng-200 --methods ft
chunk --cells sst5-400
# departure 9's measurement: MiniLM given a masked-LM head on its frozen encoder (built once, ~10 min), then 3phase
# on it against 3phase on the packaged model (same encoder weights; the decoder's head loaded instead of random)
python benchmarks/quality/lm_head.py --output runs/models/minilm-mlm-head >> runs/quality/log.txt 2>&1 ||
  echo "[$(date +%H:%M:%S)] lm_head.py failed (exit $?)" >> runs/quality/log.txt
chunk --cells snips --methods 3phase-lm-head
chunk --cells 20ng-200
chunk --cells snips
python benchmarks/quality/run.py --output runs/quality --summary-only --publish >> runs/quality/log.txt 2>&1
