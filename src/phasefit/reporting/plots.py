"""Plots of a run: t-SNE of validation embeddings after each phase (paper 002 Fig. 2), confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        if len(label_names) > 20:  # no legend to build: one scatter call, not one per class
            ax.scatter(points[:, 0], points[:, 1], s=9, c=[cmap(k % cmap.N) for k in labels[keep]])
        else:
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


LARGE_LABEL_SET = 50  # above it, a matrix is unreadable (and past matplotlib's pixel limit near 1,300 classes)


def plot_confusion_matrix(matrix: Any, label_names: Sequence[str], path: Path,
                          title: str = "confusion matrix (test)") -> Path:
    """The matrix for up to :data:`LARGE_LABEL_SET` classes; above, the most frequent confusions as bars."""
    if len(label_names) > LARGE_LABEL_SET:
        return plot_top_confusions(matrix, label_names, path, title=title.replace("confusion matrix", "top confusions"))
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


def plot_top_confusions(matrix: Any, label_names: Sequence[str], path: Path, *, top: int = 30,
                        title: str = "top confusions (test)") -> Path:
    """The ``top`` most frequent (gold -> predicted) errors as horizontal bars: readable at any number of classes."""
    from phasefit.evaluation.metrics import confusion_entries

    errors = sorted(((c, i, j) for i, j, c in confusion_entries(matrix) if i != j), reverse=True)[:top]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(errors) + 1.2)))
    names = [f"{label_names[i]} -> {label_names[j]}" for _, i, j in errors]
    ax.barh(range(len(errors)), [c for c, _, _ in errors], color="tab:red")
    ax.set_yticks(range(len(errors)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("test examples")
    ax.set_title(f"{title}: {len(errors)} most frequent of {len(label_names)} classes" if errors
                 else f"{title}: no errors")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
