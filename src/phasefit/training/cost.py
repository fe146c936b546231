"""Per-phase cost: wall time, examples per second, peak memory and trainable parameters."""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass, field

import torch
from torch import nn


def peak_memory_mb() -> float:
    """Peak GPU memory allocated (CUDA) or the process's peak resident set size (CPU), in MiB."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def trainable_parameters(*modules: nn.Module | None) -> int:
    seen: set[int] = set()
    total = 0
    for module in modules:
        if module is None:
            continue
        for param in module.parameters():
            if param.requires_grad and id(param) not in seen:
                seen.add(id(param))
                total += param.numel()
    return total


@dataclass
class CostMeter:
    """Measures one phase. On CPU the peak is the process's (it never goes down): read it as 'peak so far'."""

    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def record(self, examples: int, trainable: int) -> dict:
        seconds = time.perf_counter() - self.started
        return {
            "seconds": round(seconds, 3),
            "examples_per_second": round(examples / seconds, 3) if seconds > 0 else None,
            "examples": int(examples),
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "trainable_parameters": int(trainable),
        }
