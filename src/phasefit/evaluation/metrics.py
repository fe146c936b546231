"""Classification metrics: accuracy, macro precision / recall / F1, per-class report, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support


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
        out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return out
