"""Plots of a run: t-SNE of validation embeddings after each phase (paper 002 Fig. 2), confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_POINTS = 1000  # t-SNE cost grows quickly; a seeded sample of this many points per panel is plenty to see


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    return plt


def tsne_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE

    perplexity = float(max(2, min(30, (len(vectors) - 1) // 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, metric="cosine").fit_transform(
        vectors.astype(np.float32)
    )


def plot_embeddings(
    stages: Sequence[tuple[str, np.ndarray]],
    labels: Sequence[int],
    label_names: Sequence[str],
    path: Path,
    *,
    seed: int = 0,
) -> Path:
    """One t-SNE panel per stage (e.g. pre-trained, after dae, after cl, after ft), points coloured by class."""
    plt = _pyplot()
    labels = np.asarray(labels)
    keep = np.arange(len(labels))
    if len(keep) > MAX_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(keep), MAX_POINTS, replace=False))
    cmap = plt.get_cmap("tab20" if len(label_names) > 10 else "tab10")
    fig, axes = plt.subplots(1, len(stages), figsize=(4 * len(stages), 4.2), squeeze=False)
    for ax, (title, vectors) in zip(axes[0], stages):
        points = tsne_2d(np.asarray(vectors)[keep], seed)
        for k, name in enumerate(label_names):
            mask = labels[keep] == k
            if mask.any():
                ax.scatter(points[mask, 0], points[mask, 1], s=9, color=cmap(k % cmap.N), label=name)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    if len(label_names) <= 20:
        axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    fig.suptitle("validation embeddings (t-SNE), coloured by class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], label_names: Sequence[str], path: Path,
                          title: str = "confusion matrix (test)") -> Path:
    plt = _pyplot()
    matrix = np.asarray(matrix)
    size = max(4.0, 0.45 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(label_names)), label_names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    if len(label_names) <= 20:
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if matrix[i, j]:
                    ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
