#!/usr/bin/env bash
# The full CPU-tier quality benchmark, in the grid's order (cheap methods first in each cell), resumable: run it
# again after a stop and finished runs are reused. Progress goes to runs/quality/log.txt.
#   nohup bash benchmarks/quality/queue.sh > /dev/null 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p runs/quality
for cell in snips sst2-20 sst2-100 massive-400 sst5-400 20ng-200; do
  python benchmarks/quality/run.py --output runs/quality --cells "$cell" >> runs/quality/log.txt 2>&1
done
python benchmarks/quality/run.py --output runs/quality --summary-only --publish >> runs/quality/log.txt 2>&1
