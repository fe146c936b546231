"""Phase speed: each phasefit phase against a plain PyTorch loop over the same model, texts, batch and epochs.

    python benchmarks/speed.py                         # 320 SST-2 texts (CL, Joint: 640 pairs), every phase
    python benchmarks/speed.py --texts 2000 --phases dae ft
    python benchmarks/speed.py --output benchmarks/results/speed   # also writes speed-<texts>.json / .md

For every phase (DAE, CL, Joint, FT, SCL, SupCon) the same process measures, one after the other from a freshly
loaded all-MiniLM-L6-v2:

* **phasefit**: the phase's own ``run`` (the code a recipe runs: loss and decoder construction, Trainer set-up,
  checkpoints, the steps), timed from the call to its return, as ``metrics.json``'s phase seconds are;
* **plain**: what a practitioner writes by hand: sentence-transformers' own loss (``DenoisingAutoEncoderLoss``,
  ``CosineSimilarityLoss``) or the same formula in PyTorch, ``AdamW``, ``for batch in loader: loss.backward();
  step()``, no checkpoints, no schedule, the same number of examples.

It prints examples/s of both and their ratio; the split of phasefit's time into fixed overhead (before the first
step and after the last, from Trainer callbacks) and the per-step rate; and the achieved training FLOP rate
(``torch.utils.flop_counter`` on one step) as a fraction of a large fp32 matmul's rate measured in this run.
Every number comes from this run; nothing is assumed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SST2 = Path(os.environ.get("PHASEFIT_SST2", ROOT.parent / "shared" / "data" / "sst2"))
MODEL = os.environ.get("PHASEFIT_MODEL", "sentence-transformers/all-MiniLM-L6-v2")  # a local folder on a GPU box
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # the plain loop runs where the Trainer does
NEWSGROUPS = ROOT.parent / "shared" / "data" / "20newsgroups"
PHASES = ["dae", "cl", "joint", "ft", "scl", "supcon"]
RECIPE_OF = {"dae": "dae-ft", "cl": "cl-ft", "joint": "joint", "ft": "ft", "scl": "scl", "supcon": "supcon-ft"}


# --------------------------------------------------------------------------------------------------------------
# Data and settings shared by both sides


def load_texts(count: int, validation: int, seed: int = 0, data: str = "sst2"
               ) -> tuple[list[str], list[str], list[str], list[str]]:
    """``count`` training texts and ``validation`` held-out texts (SST-2: dev; 20 Newsgroups: test), seeded, with
    their labels."""
    def read(path: Path) -> tuple[list[str], list[str]]:
        csv.field_size_limit(1 << 24)
        with path.open(encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if r["text"].strip()]
        return [r["text"] for r in rows], [r["label"] for r in rows]

    folder, held_out = (SST2, "validation.csv") if data == "sst2" else (NEWSGROUPS, "test.csv")
    texts, labels = read(folder / "train.csv")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(texts), count, replace=False)
    val_texts, val_labels = read(folder / held_out)
    vpick = rng.choice(len(val_texts), validation, replace=False)
    return ([texts[i] for i in pick], [labels[i] for i in pick], [val_texts[i] for i in vpick],
            [val_labels[i] for i in vpick])


def phase_settings(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    """The phase's settings on both sides: batch, epochs, no early stop, no plots or progress bars."""
    epochs = args.ft_epochs if phase in {"ft", "scl"} else args.epochs
    common = {"batch_size": args.batch, "epochs": epochs}
    settings: dict[str, Any] = {"progress": False, "plots": False, "seed": 0, "model": {"name": MODEL},
                                "data": {"max_length": args.max_length},
                                "ft": {**common, "patience": 1000}}
    if phase in {"dae", "cl", "joint", "supcon"}:
        settings[phase] = dict(common)
    if phase == "joint":
        settings["joint"]["epochs"] = epochs
    if getattr(args, "group_by_length", None) is not None:
        settings["ft"]["group_by_length"] = args.group_by_length
    return settings


# --------------------------------------------------------------------------------------------------------------
# phasefit's side: the phase's own code, with timing callbacks


def step_clock() -> Any:
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.step_begins: list[float] = []
            self.step_ends: list[float] = []
            self.epoch_ends: list[float] = []
            self.evaluated: list[float] = []
            self.saved: list[float] = []

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.step_begins.append(time.perf_counter())

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.step_ends.append(time.perf_counter())

        # after an epoch's last step: on_epoch_end, then the validation pass (FT), then the checkpoint
        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.epoch_ends.append(time.perf_counter())

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.evaluated.append(time.perf_counter())

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.saved.append(time.perf_counter())

    return Clock()


def phase_config(phase: str, data: tuple, args: argparse.Namespace) -> tuple[Any, Any]:
    """The run config of the phase's recipe and the data splits: train = the texts, validation = the dev sample."""
    from phasefit.data.memory import in_memory_data
    from phasefit.recipes import build_config
    from phasefit.run_data import load_run_data

    texts, labels, val_texts, val_labels = data
    tables = in_memory_data({"text": texts, "label": labels}, {"text": val_texts, "label": val_labels},
                            {"text": val_texts[:8], "label": val_labels[:8]})
    settings = phase_settings(phase, args)
    settings["data"]["path"] = tables.spec
    if args.max_pairs:
        settings.setdefault("cl", {})["max_pairs"] = args.max_pairs
    config = build_config(RECIPE_OF[phase], settings=settings)
    return config, load_run_data(config, tables)


def run_phasefit(phase: str, data: tuple, args: argparse.Namespace) -> dict[str, Any]:
    from phasefit.models.encoder import load_encoder
    from phasefit.phases import get_phase
    from phasefit.phases.base import PhaseContext

    config, splits = phase_config(phase, data, args)
    encoder = load_encoder(config.model)
    torch.manual_seed(0)
    clock = step_clock()
    with tempfile.TemporaryDirectory() as work:
        ctx = PhaseContext(config=config, splits=splits, encoder=encoder, max_length=args.max_length,
                           work_dir=Path(work), callbacks=[clock])
        started = time.perf_counter()
        record = get_phase("ft" if phase == "scl" else phase).run(ctx)
        synchronize()
        ended = time.perf_counter()
    steps = len(clock.step_ends)
    examples = record["examples"]
    # validation passes (FT) and checkpoint writes, summed over the phase
    validation = sum(e - b for b, e in zip(clock.epoch_ends, clock.evaluated))
    checkpoints = sum(s - (e if e is not None else b) for b, e, s in
                      zip(clock.epoch_ends, clock.evaluated or [None] * len(clock.saved), clock.saved))
    last_validation = clock.evaluated[-1] - clock.epoch_ends[-1] if clock.evaluated else 0.0
    out = {"seconds": ended - started, "examples": examples, "steps": steps,
           "before_first_step": clock.step_begins[0] - started,
           # after the last step, less the last epoch's validation pass (the plain loop has one too)
           "after_last_step": ended - clock.step_ends[-1] - last_validation,
           "validation_seconds": validation, "checkpoint_seconds": checkpoints}
    # per-step rate over steps 2..n (the first carries one-off allocation), in examples/s
    if steps > 1:
        out["step_rate"] = examples * (steps - 1) / steps / (clock.step_ends[-1] - clock.step_ends[0])
    return out


# --------------------------------------------------------------------------------------------------------------
# The plain loop: sentence-transformers' losses (or the same formula in PyTorch), AdamW, nothing else


def fresh_encoder() -> Any:
    from sentence_transformers import SentenceTransformer

    from phasefit.models.encoder import resolve_model_path

    return SentenceTransformer(str(resolve_model_path(MODEL)), device=DEVICE)


def batches(items: list[Any], batch: int, epochs: int, seed: int = 0) -> list[list[Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(epochs):
        order = rng.permutation(len(items))
        out += [[items[i] for i in order[s:s + batch]] for s in range(0, len(items), batch)]
    return out


def features(model: Any, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    batch = model.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {key: value.to(DEVICE) for key, value in batch.items()}


def supcon(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Khosla et al. eq. 1 written out (z: (M, D), labels: (M,))."""
    z = nn.functional.normalize(z, dim=-1)
    logits = (z @ z.T / temperature).fill_diagonal_(float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]).fill_diagonal_(False)
    count = positive.sum(1)
    keep = count > 0
    return -(log_prob.masked_fill(~positive, 0).sum(1)[keep] / count[keep]).mean()


class PlainStep:
    """One phase's plain loop: ``setup()`` builds loss and optimiser, ``step(batch)`` trains on one batch."""

    def __init__(self, phase: str, data: tuple, args: argparse.Namespace, pairs: list[tuple[str, str, float]]):
        self.phase, self.args = phase, args
        self.texts, self.labels, self.val_texts, self.val_labels = data
        self.names = sorted(set(self.labels))
        self.pairs = pairs
        self.rng = np.random.default_rng(0)

    def setup(self) -> None:
        from sentence_transformers.sentence_transformer import losses

        args = self.args
        model = self.model
        model.max_seq_length = args.max_length
        params = list(model.parameters())
        if self.phase in {"dae", "joint"}:
            self.dae = losses.DenoisingAutoEncoderLoss(model, tie_encoder_decoder=True).to(DEVICE)  # its decoder
            params = list(self.dae.parameters())
        if self.phase in {"cl", "joint"}:
            self.cos = losses.CosineSimilarityLoss(model)
        if self.phase in {"ft", "scl"}:
            torch.manual_seed(0)
            self.head = nn.Sequential(nn.Linear(384, 256), nn.GELU(), nn.Dropout(0.1),
                                      nn.Linear(256, len(self.names))).to(DEVICE)
            params += list(self.head.parameters())
        if self.phase == "supcon":
            self.projection = nn.Sequential(nn.Dropout(0.1), nn.Linear(384, 384)).to(DEVICE)
            params += list(self.projection.parameters())
        self.optimizer = torch.optim.AdamW({id(p): p for p in params}.values(), lr=2e-5)
        self.model.train()

    def plan(self) -> list[Any]:
        args = self.args
        if self.phase == "cl":
            return batches(self.pairs, args.batch, args.epochs)
        if self.phase == "joint":
            n = max(len(self.pairs), len(self.texts))
            items = [(self.pairs[i % len(self.pairs)], self.texts[i % len(self.texts)]) for i in range(n)]
            return batches(items, args.batch, args.epochs)
        epochs = args.ft_epochs if self.phase in {"ft", "scl"} else args.epochs
        rows = list(zip(self.texts, [self.names.index(y) for y in self.labels]))
        plan = batches(rows, args.batch, epochs)
        if self.phase in {"ft", "scl"}:  # a validation pass after each epoch, as FT early stopping does
            per_epoch = len(plan) // epochs
            plan = [item for e in range(epochs) for item in plan[e * per_epoch:(e + 1) * per_epoch] + ["validate"]]
        return plan

    def delete(self, text: str) -> str:
        """TSDAE's noise: delete each word with probability 0.6, keep at least one (whitespace words: sentence-
        transformers' own ``DenoisingAutoEncoderDataset.delete`` needs nltk)."""
        words = text.split()
        kept = [w for w in words if self.rng.random() > 0.6]
        return " ".join(kept or words[:1])

    def examples(self, batch: Any) -> int:
        return 0 if batch == "validate" else len(batch)

    def loss(self, batch: Any) -> torch.Tensor:
        m, length = self.model, self.args.max_length
        if self.phase == "dae":
            texts = [t for t, _ in batch]
            noisy = [self.delete(t) for t in texts]
            return self.dae([features(m, noisy, length), features(m, texts, length)], None)
        if self.phase == "cl":
            a, b, y = zip(*batch)
            return self.cos([features(m, list(a), length), features(m, list(b), length)],
                            torch.tensor(y, device=DEVICE))
        if self.phase == "joint":
            pairs, texts = zip(*batch)
            a, b, y = zip(*pairs)
            noisy = [self.delete(t) for t in texts]
            return (self.dae([features(m, noisy, length), features(m, list(texts), length)], None)
                    + self.cos([features(m, list(a), length), features(m, list(b), length)],
                               torch.tensor(y, device=DEVICE)))
        texts, y = zip(*batch)
        y = torch.tensor(y, device=DEVICE)
        if self.phase == "supcon":
            f = features(m, list(texts), length)
            views = torch.cat([self.projection(m(dict(f))["sentence_embedding"]) for _ in range(2)])
            return supcon(views, y.repeat(2), 0.1)
        z = m(features(m, list(texts), length))["sentence_embedding"]
        loss = nn.functional.cross_entropy(self.head(z), y)
        if self.phase == "scl":
            loss = 0.1 * loss + 0.9 * supcon(z, y, 0.3)
        return loss

    def step(self, batch: Any) -> None:
        if batch == "validate":
            self.model.eval()
            with torch.no_grad():
                for s in range(0, len(self.val_texts), 64):
                    self.head(self.model(features(self.model, self.val_texts[s:s + 64], self.args.max_length))
                              ["sentence_embedding"]).argmax(-1)
            self.model.train()
            return
        self.optimizer.zero_grad()
        self.loss(batch).backward()
        self.optimizer.step()


def run_plain(phase: str, data: tuple, args: argparse.Namespace, pairs: list) -> dict[str, Any]:
    loop = PlainStep(phase, data, args, pairs)
    loop.model = fresh_encoder()  # not timed, as phasefit's side gets its encoder loaded
    started = time.perf_counter()
    loop.setup()
    plan_items = loop.plan()
    first = None
    ends = []
    for batch in plan_items:
        if first is None:
            first = time.perf_counter()
        loop.step(batch)
        ends.append(time.perf_counter())
    synchronize()
    ended = time.perf_counter()
    examples = sum(loop.examples(b) for b in plan_items)
    flops = step_flops(loop, next(b for b in plan_items if b != "validate"))
    return {"seconds": ended - started, "examples": examples, "steps": len(plan_items),
            "before_first_step": first - started, "flops_per_example": flops / len(plan_items[0])}


def step_flops(loop: PlainStep, batch: Any) -> float:
    """FLOPs of one training step (forward + backward) on ``batch``, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        loop.loss(batch).backward()
    loop.optimizer.zero_grad()
    return float(counter.get_total_flops())


def synchronize() -> None:
    """Wait for queued GPU work, so a clock read after it counts it (nothing to wait for on a CPU)."""
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n x n fp32 matmul on this machine's device, now."""
    if DEVICE == "cuda":
        n = 8192  # a GPU needs a larger product to reach its rate
    a, b = torch.randn(n, n, device=DEVICE), torch.randn(n, n, device=DEVICE)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        a @ b
        synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


# --------------------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=320)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1, help="epochs of DAE, CL, Joint, SupCon")
    parser.add_argument("--ft-epochs", type=int, default=3, help="epochs of FT and SCL (each with a validation pass)")
    parser.add_argument("--max-pairs", type=int, default=640,
                        help="cap CL/Joint pairs (both sides; 0: all, 1,858 for 320 texts): 640 keeps the run ~15 min")
    parser.add_argument("--phases", nargs="+", default=PHASES, choices=PHASES)
    parser.add_argument("--output", type=Path, help="folder for speed-<texts>.json and .md")
    parser.add_argument("--data", choices=["sst2", "20ng"], default="sst2")
    parser.add_argument("--length-grouping", action="store_true",
                        help="instead: FT with and without length-grouped batches (use --data 20ng --max-length 256)")
    args = parser.parse_args()

    data = load_texts(args.texts, args.validation, data=args.data)
    if args.length_grouping:
        length_grouping(data, args)
        return
    peak = matmul_rate()
    rows = []
    for phase in args.phases:
        pairs = plain_pairs(data, args) if phase in {"cl", "joint"} else []
        plain = run_plain(phase, data, args, pairs)
        ours = run_phasefit(phase, data, args)
        row = {"phase": phase, "examples": ours["examples"], "plain_examples": plain["examples"],
               "phasefit_ex_s": ours["examples"] / ours["seconds"], "plain_ex_s": plain["examples"] / plain["seconds"],
               "phasefit_seconds": ours["seconds"], "plain_seconds": plain["seconds"],
               "fixed_before": ours["before_first_step"], "fixed_after": ours["after_last_step"],
               "plain_before": plain["before_first_step"], "step_rate": ours.get("step_rate"),
               "validation_seconds": ours["validation_seconds"], "checkpoint_seconds": ours["checkpoint_seconds"],
               "flops_per_example": plain["flops_per_example"]}
        row["ratio"] = row["phasefit_ex_s"] / row["plain_ex_s"]
        row["mfu_phasefit"] = row["phasefit_ex_s"] * row["flops_per_example"] / peak
        row["mfu_plain"] = row["plain_ex_s"] * row["flops_per_example"] / peak
        rows.append(row)
        print(format_row(row), flush=True)
    report = render(rows, args, peak)
    print(report)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        name = f"speed-{args.texts}" + ("" if args.phases == PHASES else "-" + "-".join(args.phases))
        (args.output / f"{name}.json").write_text(json.dumps({"rows": rows, "matmul_flops": peak,
                                                                         "args": vars(args) | {"output": str(args.output)},
                                                                         **environment()}, indent=1))
        (args.output / f"{name}.md").write_text(report)


def length_grouping(data: tuple, args: argparse.Namespace) -> None:
    """FT's examples/s with length-grouped batches and with plain random batches (dynamic padding in both), same
    texts, same run; the token count each side pads to is printed too."""
    seconds: dict[bool, list[float]] = {True: [], False: []}
    examples = 0
    for grouped in (True, False, False, True):  # ABBA: a drift of the machine's speed cancels out
        args.group_by_length = grouped
        out = run_phasefit("ft", data, args)
        seconds[grouped].append(out["seconds"])
        examples = out["examples"]
    lines = [f"# FT with and without length-grouped batches: {args.texts} {args.data} texts, max {args.max_length} "
             f"tokens, batch {args.batch}, {args.ft_epochs} epochs (+ a validation pass of {args.validation} each)",
             "", f"`python benchmarks/speed.py --length-grouping --data {args.data} --texts {args.texts} "
             f"--max-length {args.max_length} --ft-epochs {args.ft_epochs} --validation {args.validation}` "
             "(order: grouped, random, random, grouped)", "",
             "| batches | examples/s (mean of 2) | examples | seconds, each run |", "|---|---|---|---|"]
    rate = {g: examples / (sum(s) / len(s)) for g, s in seconds.items()}
    lines += [f"| {'length-grouped' if g else 'random'} | {rate[g]:.2f} | {examples} | "
              f"{', '.join(f'{x:.1f}' for x in seconds[g])} |" for g in (True, False)]
    lines += ["", f"Length-grouped / random: {rate[True] / rate[False]:.2f}x."]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / f"length-grouping-{args.data}-{args.texts}.md").write_text(report)


def plain_pairs(data: tuple, args: argparse.Namespace) -> list[tuple[str, str, float]]:
    """The pairs phasefit's CL builds for these texts (same function, seed and settings), so both sides train on
    the same pairs."""
    from types import SimpleNamespace

    from phasefit.phases.staged import contrastive_pairs

    config, splits = phase_config("cl", data, args)[:2]
    return contrastive_pairs(SimpleNamespace(seed=config.seed, splits=splits), config.cl)[0]


def environment() -> dict[str, Any]:
    import sentence_transformers
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu",
            "cores": os.cpu_count()}


def format_row(row: dict[str, Any]) -> str:
    return (f"{row['phase']:>6}: phasefit {row['phasefit_ex_s']:.1f} ex/s, plain {row['plain_ex_s']:.1f} ex/s, "
            f"ratio {row['ratio']:.2f}; fixed {row['fixed_before']:.1f} s before + {row['fixed_after']:.1f} s after")


def render(rows: list[dict[str, Any]], args: argparse.Namespace, peak: float) -> str:
    env = environment()
    lines = [f"# Phase speed, {args.texts} SST-2 texts, max {args.max_length} tokens, batch {args.batch}", "",
             f"`python benchmarks/speed.py --texts {args.texts}"
             + (f" --max-pairs {args.max_pairs}" if args.max_pairs else "")
             + ("" if args.phases == PHASES else " --phases " + " ".join(args.phases)) + f"` — torch {env['torch']}, transformers "
             f"{env['transformers']}, sentence-transformers {env['sentence_transformers']}, Python {env['python']}, "
             f"{env['cores']} cores ({env['threads']} torch threads), device {env['device']}; fp32 matmul peak measured in this run: "
             f"{peak / 1e9:.1f} GFLOP/s.", "",
             "| phase | examples | phasefit ex/s | plain ex/s | ratio | phasefit s | plain s | fixed before first step s "
             "| fixed after last step s | of which: validation s, checkpoints s (whole phase) | plain set-up s "
             "| per-step rate ex/s | MFU phasefit | MFU plain |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        step = f"{r['step_rate']:.1f}" if r["step_rate"] else "-"
        lines.append(f"| {r['phase']} | {r['examples']} | {r['phasefit_ex_s']:.1f} | {r['plain_ex_s']:.1f} | "
                     f"{r['ratio']:.2f} | {r['phasefit_seconds']:.1f} | {r['plain_seconds']:.1f} | "
                     f"{r['fixed_before']:.2f} | {r['fixed_after']:.2f} | "
                     f"{r['validation_seconds']:.1f}, {r['checkpoint_seconds']:.1f} | {r['plain_before']:.2f} | {step} | "
                     f"{r['mfu_phasefit']:.1%} | {r['mfu_plain']:.1%} |")
    lines.append("")
    lines.append("Examples are texts (DAE, FT, SCL, SupCon) or pairs (CL; Joint: one pair and one text each); FT and "
                 "SCL include a validation pass per epoch on both sides (the last one is not counted in 'fixed after "
                 "last step'). 'Fixed' is phasefit's time outside the training steps: set-up before the first step "
                 "(loss, decoder, Trainer), and after the last one (restoring FT's best epoch). One measurement per "
                 "side, plain first. The plain loop uses torch's default AdamW and no gradient clipping; phasefit "
                 "clips at 1.0 and uses the fused AdamW (trainer.fused_optimizer).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
