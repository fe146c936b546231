"""Peak memory of loading a large CSV (issue 10, item 8): a 200 MB train file through phasefit's data layer.

    python benchmarks/data_memory.py [--src SRC_DIR] [--mb 200]

Writes runs/data-memory/train.csv once (2 columns, 10 labels, ~100-byte texts), then in a fresh subprocess imports
phasefit's loader from SRC_DIR (default: this checkout's src/) and reports the process's peak RSS after the
imports alone and after `load_splits` (the split into train/validation/test included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from phasefit.data import load_splits
import pandas, numpy  # noqa: F401
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
splits = load_splits(sys.argv[2])
print(json.dumps({"imports_mb": before / 1024, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.perf_counter() - t, "rows": len(splits.train) + len(splits.validation) + len(splits.test)}))
"""


def make_file(folder: Path, megabytes: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.csv"
    if path.is_file() and path.stat().st_size >= megabytes * 2**20:
        return path
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches".split()
    with path.open("w", encoding="utf-8") as handle:
        handle.write("text,label\n")
        i = 0
        while handle.tell() < megabytes * 2**20:
            text = " ".join(words[(i * 7 + k) % len(words)] for k in range(16)) + f" {i}"
            handle.write(f"{text},label{i % 10}\n")
            i += 1
    return path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default=str(ROOT / "src"))
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    path = make_file(ROOT / "runs" / "data-memory", args.mb)
    out = subprocess.run([sys.executable, "-c", PROBE, args.src, str(path.parent)], capture_output=True, text=True,
                         check=True, timeout=1800)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["file_mb"] = path.stat().st_size / 2**20
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
