#!/usr/bin/env bash
# The FastFit peer's own virtual environment (idempotent: a second run checks the pins and returns).
#
#   bash benchmarks/quality/setup_fastfit.sh            # makes .venv-fastfit/ at the repository root
#   FASTFIT_VENV=/somewhere bash benchmarks/quality/setup_fastfit.sh
#
# Why a venv of its own: fast-fit 1.2.1 declares no version pins, but its code needs an older stack than phasefit's
# (transformers>=5, datasets 5): fastfit/train.py imports `load_metric` from datasets (removed in datasets 3.0) and
# builds `Trainer(tokenizer=...)` (removed in transformers 5). So it runs as its users would run it today, in an
# environment of its own: transformers 4.44.2 and datasets 2.21.0 (the last with load_metric), driven by
# benchmarks/quality/fastfit_peer.py as a subprocess.
#
# torch is installed first and alone: installing anything torch-dependent before it lets pip choose a multi-GB CUDA
# build. On this project's machines pip's find-links (/opt/wheels) holds the CPU wheel of torch 2.13.0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${FASTFIT_VENV:-$ROOT/.venv-fastfit}"
PYTHON="${PYTHON:-python3}"
PINS=(fast-fit==1.2.1 transformers==4.44.2 datasets==2.21.0 "accelerate>=0.26,<1.1" scikit-learn "numpy<2.3")

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
printf '*\n' > "$VENV/.gitignore"  # the venv never shows as untracked files

# Already set up with these pins: nothing to do (pip's check is quick, but its resolver is not).
if "$VENV/bin/python" - "${PINS[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    from packaging.requirements import Requirement
except ImportError:  # packaging arrives with the pins
    sys.exit(1)
try:
    ok = version("torch").startswith("2.13.0") and all(
        Requirement(pin).specifier.contains(version(Requirement(pin).name), prereleases=True) for pin in sys.argv[1:])
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
EOF
then
  echo "FastFit venv ready: $VENV"
  exit 0
fi

"$VENV/bin/python" -m pip install --quiet torch==2.13.0
"$VENV/bin/python" -m pip install --quiet "${PINS[@]}"
"$VENV/bin/python" -c "import fastfit, torch, transformers, datasets; print('FastFit venv ready:', '$VENV', \
'fast-fit', __import__('importlib.metadata').metadata.version('fast-fit'), 'torch', torch.__version__, \
'transformers', transformers.__version__, 'datasets', datasets.__version__)"
