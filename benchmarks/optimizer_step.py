"""One AdamW step over 33M parameters shaped like DAE's (the 30,522 x 384 embedding and 12 layers' matrices: MiniLM-L6
and its decoder), with torch's default implementation, foreach and fused, and one gradient clipping: why phasefit
uses the fused AdamW (trainer.fused_optimizer).

    python benchmarks/optimizer_step.py
"""

from __future__ import annotations

import time

import torch


def milliseconds(step, repeats: int = 6) -> float:  # noqa: ANN001 - any callable
    step()  # first call allocates the optimiser state
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    torch.manual_seed(0)
    shapes = [(30522, 384)] + [(384, 384)] * 4 * 12 + [(1536, 384), (384, 1536)] * 12 + [(384,)] * 100
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    print(f"{sum(p.numel() for p in params) / 1e6:.1f}M parameters, {torch.get_num_threads()} torch threads")
    for name, options in [("default", {}), ("foreach", {"foreach": True}), ("fused", {"fused": True})]:
        optimizer = torch.optim.AdamW(params, lr=1e-5, **options)
        print(f"AdamW {name:<8} {milliseconds(optimizer.step):6.1f} ms / step")
    print(f"clip_grad_norm_   {milliseconds(lambda: torch.nn.utils.clip_grad_norm_(params, 1.0)):6.1f} ms / call")


if __name__ == "__main__":
    main()
