"""How much a held-out validation ranking loses: for every split where ft-frozen, ft, scl and 3phase all ran, the
candidate with the best validation macro-F1 is chosen, and its regret is the best candidate's test accuracy minus
the chosen one's (points). What `phasefit select`'s default (cross-validation up to 2,000 labelled rows) rests on.

    python benchmarks/quality/holdout_regret.py            # reads benchmarks/quality/results.csv
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

CANDIDATES = ["ft-frozen", "ft", "scl", "3phase"]


def regret_table(results: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (cell, split), runs in results[results.method.isin(CANDIDATES)].groupby(["cell", "split"]):
        if set(runs.method) != set(CANDIDATES):
            continue
        chosen = runs.loc[runs.validation_macro_f1.idxmax()]
        rows.append({"cell": cell, "validation rows": int(chosen.validation_size),
                     "regret": 100 * (runs.test_accuracy.max() - chosen.test_accuracy)})
    table = pd.DataFrame(rows).groupby("cell").agg(**{"validation rows": ("validation rows", "first"),
                                                     "splits": ("regret", "size"),
                                                     "mean regret (test points)": ("regret", "mean")})
    return table.sort_values("validation rows")


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("results.csv")
    print(regret_table(pd.read_csv(path)).round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
