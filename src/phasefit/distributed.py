"""Several processes training one run (``accelerate launch`` / ``torchrun``): who writes, and when to wait.

Every process runs the whole pipeline — the same data, the same seeded pairs, noise and down-sampling, the same
phases — and ``transformers.Trainer`` shards each phase's batches across them and averages their gradients. Only
the main process writes the run directory, computes the embedding diagnostics and scores validation and test;
the others train and return. Outside a launcher there is one process, which is the main one.
"""

from __future__ import annotations

import os
from typing import Any


def num_processes() -> int:
    """Processes training this run: torchrun's (``accelerate launch --multi_gpu``'s) ``WORLD_SIZE``, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def use_cpu_processes() -> bool:
    """Several processes and no GPU: the Trainer must be told to use the CPU, or each process would train alone
    (accelerate only sets up a CPU process group when asked to run on the CPU)."""
    import torch

    return num_processes() > 1 and not torch.cuda.is_available()


def wait_for_everyone() -> None:
    """A barrier: every process waits here until all have arrived (nothing to wait for with one process). Sets up
    the process group first if no Trainer has yet (gloo on CPU, nccl on GPUs)."""
    if num_processes() <= 1:
        return
    import torch

    if not torch.distributed.is_initialized():
        from accelerate import PartialState

        PartialState(cpu=use_cpu_processes())
    torch.distributed.barrier()


def _group() -> bool:
    """Whether a torch process group is set up (a Trainer, or :func:`wait_for_everyone`, made one)."""
    import torch

    return torch.distributed.is_available() and torch.distributed.is_initialized()


def gather_with_grad(tensor: Any) -> Any:
    """``tensor`` (B, ...) of every process, concatenated in rank order, with the gradient flowing back to each
    process's own rows (``torch.distributed.nn.functional.all_gather``); the tensor itself with one process.

    A contrastive loss computed on the gathered batch on every process has the single-process gradient of the
    global batch once the Trainer averages gradients: each process's rows receive the gradient of all P copies of
    the loss (P x the single-process one), and the average over processes divides by P again. Every process must
    hold a batch of the same size (the Trainer's batch sharding makes them even).
    """
    import torch

    if not _group() or torch.distributed.get_world_size() == 1:
        return tensor
    sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    if len({int(s) for s in sizes}) != 1:
        raise RuntimeError(f"processes hold batches of different sizes {[int(s) for s in sizes]}; the global "
                           "contrastive batch needs even batches (the Trainer's default)")
    if tensor.requires_grad:
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(tensor), dim=0)
    parts = [torch.empty_like(tensor) for _ in sizes]  # labels: no gradient to carry
    torch.distributed.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def from_main_process(value: Any) -> Any:
    """The main process's ``value`` on every process (pickled and broadcast), e.g. a decision only it may take;
    ``value`` itself with one process."""
    if num_processes() <= 1:
        return value
    import torch

    wait_for_everyone()  # sets up the process group if no Trainer has yet
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def sum_over_processes(tensor: Any) -> Any:
    """The sum of ``tensor`` over every process (no gradient), or ``tensor`` itself with one process."""
    import torch

    if not _group():
        return tensor
    total = tensor.detach().clone()
    torch.distributed.all_reduce(total)
    return total


def rank() -> int:
    import torch

    return torch.distributed.get_rank() if _group() else 0
