"""Per-phase cost table (mean over runs) from finished run directories.

Usage: python benchmarks/phase_cost.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(folders: list[str]) -> None:
    by_phase: dict[tuple[str, str], list[dict]] = {}
    for folder in folders:
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
        for phase in metrics["phases"]:
            by_phase.setdefault((metrics["recipe"], phase["name"]), []).append({**phase, "max_length": metrics["max_length"]})
    print("| recipe | phase | runs | seconds | examples / s | examples per run | tokens (max) | peak RSS (MB) | trainable parameters |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (recipe, name), rows in by_phase.items():
        def mean(key: str) -> float:
            return statistics.fmean(r[key] for r in rows)

        print(f"| {recipe} | {name} | {len(rows)} | {mean('seconds'):.1f} | {mean('examples_per_second'):.1f} "
              f"| {mean('examples'):.0f} | {rows[0]['max_length']} | {max(r['peak_memory_mb'] for r in rows):,.0f} "
              f"| {rows[0]['trainable_parameters']:,} |")


if __name__ == "__main__":
    main(sys.argv[1:])
