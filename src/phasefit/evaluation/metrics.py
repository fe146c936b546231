"""Classification metrics: accuracy, macro precision / recall / F1, per-class report, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support

# Above this many classes the confusion matrix is stored sparsely: 2,000 classes would be 4 million numbers per
# split in metrics.json, almost all zero.
DENSE_CONFUSION_LIMIT = 50


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str], *, detailed: bool = True
) -> dict[str, Any]:
    """Scores of predictions against gold label ids (indices into ``label_names``).

    Macro averages are over the classes of ``label_names`` that occur in ``y_true`` or ``y_pred``
    (zero_division=0), the convention of paper 000 Tables 6-7.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "examples": int(len(y_true)),
    }
    if detailed:
        labels = list(range(len(label_names)))
        report = classification_report(
            y_true, y_pred, labels=labels, target_names=list(label_names), output_dict=True, zero_division=0
        )
        out["per_class"] = {name: report[name] for name in label_names}
        if len(label_names) <= DENSE_CONFUSION_LIMIT:
            out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
        else:  # sparse: (gold, predicted, count) for every non-zero cell, without building the C x C matrix
            pairs, counts = np.unique(np.stack([y_true, y_pred], axis=1), axis=0, return_counts=True)
            out["confusion_matrix"] = {"format": "sparse", "shape": [len(labels), len(labels)],
                                       "entries": [[int(i), int(j), int(c)] for (i, j), c in zip(pairs, counts)]}
    return out


def confusion_entries(matrix: Any) -> list[tuple[int, int, int]]:
    """(gold, predicted, count) of the non-zero cells of a stored confusion matrix, dense or sparse."""
    if isinstance(matrix, dict):
        return [(int(i), int(j), int(c)) for i, j, c in matrix["entries"]]
    dense = np.asarray(matrix)
    return [(int(i), int(j), int(dense[i, j])) for i, j in zip(*np.nonzero(dense))]
