"""Embedding diagnostics per phase: what a phase did to the space, measured on validation.

k-NN accuracy: a 5-nearest-neighbour classifier (cosine) fitted on training embeddings, scored on validation.
Silhouette: scikit-learn's silhouette score of the validation embeddings grouped by gold label (cosine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier


def embedding_diagnostics(
    train_embeddings: np.ndarray,
    train_labels: Sequence[int],
    val_embeddings: np.ndarray,
    val_labels: Sequence[int],
    *,
    k: int = 5,
) -> dict[str, float | None]:
    train_labels = np.asarray(train_labels)
    val_labels = np.asarray(val_labels)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_labels)), metric="cosine")
    knn.fit(train_embeddings, train_labels)
    knn_accuracy = float((knn.predict(val_embeddings) == val_labels).mean())
    silhouette = None
    if 2 <= len(set(val_labels.tolist())) < len(val_labels):
        silhouette = float(silhouette_score(val_embeddings, val_labels, metric="cosine"))
    return {"knn_accuracy": knn_accuracy, "silhouette": silhouette}
