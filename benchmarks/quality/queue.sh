#!/usr/bin/env bash
# The 2026-12 rerun of the quality benchmark (one labelled budget for every method), resumable: run it again after
# a stop and finished runs are reused (published ones restored from benchmarks/quality/runs/). What it adds to the
# complete 2026-11 benchmark: the peers at their own budgets (setfit-default, setfit-tuned, fastfit), the probe
# on its wider C grid, and phasefit-auto as `phasefit select` itself (5-fold CV, refit on the pool). A cell goes
# split by split, so a stopped session leaves every method on the same splits; cheap cells first. Each chunk ends
# by rewriting results.csv and summary.md, and publishes its finished runs. Progress goes to runs/quality/log.txt.
#   BENCH_SRC=/work/bench-snap/src setsid nohup bash benchmarks/quality/queue.sh > /dev/null 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# BENCH_SRC: a copy of src/ to run from, so editing the working tree during a long run cannot change it midway
if [[ -n "${BENCH_SRC:-}" ]]; then export PYTHONPATH="$BENCH_SRC${PYTHONPATH:+:$PYTHONPATH}"; fi
# FastFit's driver and venv belong to this checkout, wherever the src/ copy lies
export PHASEFIT_FASTFIT_SCRIPT="$PWD/benchmarks/quality/fastfit_peer.py" PHASEFIT_FASTFIT_PYTHON="$PWD/.venv-fastfit/bin/python"
mkdir -p runs/quality
bash benchmarks/quality/setup_fastfit.sh >> runs/quality/log.txt 2>&1  # FastFit's own venv (idempotent)
new=(probe setfit-default setfit-tuned fastfit phasefit-auto)
# a chunk that fails (its traceback is in the log) does not stop the chunks after it
chunk() {
  python benchmarks/quality/run.py --output runs/quality "$@" >> runs/quality/log.txt 2>&1 ||
    echo "[$(date +%H:%M:%S)] chunk failed (exit $?): $*" >> runs/quality/log.txt
  python benchmarks/quality/run.py --output runs/quality --publish-runs >> runs/quality/log.txt 2>&1 || true
}
for cell in snips sst2-20 sst2-100 massive-400 sst5-400; do
  for split in 0 1 2; do
    chunk --cells "$cell" --methods "${new[@]}" --seeds "$split"
  done
  chunk --cells "$cell" --methods probe  # the probe's other splits (seconds each)
done
chunk --cells 20ng-200 --methods probe
python benchmarks/quality/run.py --output runs/quality --summary-only --publish >> runs/quality/log.txt 2>&1
