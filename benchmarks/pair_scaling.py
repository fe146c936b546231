"""Time and peak memory of phase-2 pair construction from 10^3 to 10^6 training examples (issue 12, item 4).

    python benchmarks/pair_scaling.py [--sizes 1000 10000 100000 1000000] [--classes 10 1000] [--reference-max 10000]
                                      [--output benchmarks/results/pair_scaling]

Each point runs in a fresh subprocess: synthetic data (3-12 word texts from a 240-word vocabulary, 40 of its words
stop words, so copies of texts of 6 words or more get stop-word noise; labels with geometric class sizes, the
largest class 100 times as likely as the smallest), then, with the defaults phase 2 uses (min_ratio 1.5, max_ratio
4, augmentation_factor 4, balance_targets on, one seeded generator throughout):

* ``balance+build``: ``balance_classes`` then ``build_pairs`` on its output;
* ``setfit``: ``balance_classes`` then ``sample_setfit_pairs`` (5 iterations); its time column is the sampling alone.

Peak memory is the growth of the subprocess's peak RSS (``ru_maxrss``) over its peak after the data was made.
Points up to ``--reference-max`` examples are also run with the per-pair loops this replaced (the reference copy in
tests/test_pairs_scaling.py) and checked to give the same pairs. Writes results.csv, results.md and pair_scaling.png
under the output folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import hashlib, json, resource, sys, time
import numpy as np
sys.path[:0] = [sys.argv[1], sys.argv[2]]
n, k, what, impl, digest = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7] == "1"
if impl == "reference":
    import test_pairs_scaling as ref
    balance_classes, build_pairs = ref.ref_balance_classes, ref.ref_build_pairs
    sample_setfit_pairs = ref.ref_sample_setfit_pairs
else:
    from phasefit.data.pairs import balance_classes, build_pairs, sample_setfit_pairs
from phasefit.data.noise import DEFAULT_STOP_WORDS

gen = np.random.default_rng(12345)
vocab = np.array(sorted(DEFAULT_STOP_WORDS)[:40] + [f"w{i}" for i in range(200)], dtype=object)
texts = []
for s in range(0, n, 50000):  # in chunks: no large transient before the baseline is taken
    m = min(50000, n - s)
    rows = vocab[gen.integers(len(vocab), size=(m, 12))].tolist()
    texts += [" ".join(row[:w]) for row, w in zip(rows, gen.integers(3, 13, size=m).tolist())]
q = 100.0 ** (-1.0 / max(k - 1, 1))
p = q ** np.arange(k)
labels = [f"class{c}" for c in gen.choice(k, size=n, p=p / p.sum()).tolist()]
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rng = np.random.default_rng(0)
w0, c0 = time.perf_counter(), time.process_time()
bt, bl = balance_classes(texts, labels, rng, min_ratio=1.5, max_ratio=4.0)
w1, c1 = time.perf_counter(), time.process_time()
if what == "balance+build":
    pairs = build_pairs(bt, bl, rng, augmentation_factor=4, balance_targets=True)
else:
    pairs = sample_setfit_pairs(bt, bl, rng, num_iterations=5)
w2, c2 = time.perf_counter(), time.process_time()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
h = hashlib.sha256()
if digest:
    h.update(repr((bt, bl)).encode())
    for s in range(0, len(pairs), 100000):
        h.update(repr(list(pairs[s:s + 100000])).encode())
print(json.dumps({"n": n, "classes": k, "function": what, "impl": impl, "balanced": len(bt), "pairs": len(pairs),
                  "balance_s": w1 - w0, "pairs_s": w2 - w1, "balance_cpu_s": c1 - c0, "pairs_cpu_s": c2 - c1,
                  "peak_mb": (peak - base) / 1024, "digest": h.hexdigest()[:16],
                  "state": str(rng.bit_generator.state["state"])}))
"""


def run_point(n: int, k: int, what: str, impl: str, digest: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "src"), str(ROOT / "tests"), str(n), str(k), what,
                          impl, "1" if digest else "0"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    new = [r for r in rows if r["impl"] == "vectorised"]
    for (what, k), style in zip(sorted({(r["function"], r["classes"]) for r in new}), ["o-", "s-", "o--", "s--"]):
        pts = sorted((r for r in new if r["function"] == what and r["classes"] == k), key=lambda r: r["n"])
        xs = [r["n"] for r in pts]
        ax_t.plot(xs, [r["total_s"] for r in pts], style, label=f"{what}, {k} classes")
        ax_m.plot(xs, [max(r["peak_mb"], 0.1) for r in pts], style, label=f"{what}, {k} classes")
    ref = [r for r in rows if r["impl"] == "reference" and r["function"] == "balance+build"]
    for k in sorted({r["classes"] for r in ref}):
        pts = sorted((r for r in ref if r["classes"] == k), key=lambda r: r["n"])
        ax_t.plot([r["n"] for r in pts], [r["total_s"] for r in pts], "x:", color="grey",
                  label=f"old loops, balance+build, {k} classes")
    xs = sorted({r["n"] for r in new})
    for ax, top in ((ax_t, max(r["total_s"] for r in new)), (ax_m, max(r["peak_mb"] for r in new))):
        ax.plot(xs, [top * x / xs[-1] for x in xs], color="black", lw=0.8, alpha=0.5, label="linear reference")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training examples (before imbalance correction)")
        ax.grid(True, which="both", alpha=0.3)
    ax_t.axhline(5, color="red", lw=0.8, ls=":", label="5 s target")
    ax_t.set_ylabel("seconds (balance_classes + pair function)")
    ax_m.set_ylabel("peak RSS growth, MB")
    ax_t.legend(fontsize=7)
    ax_m.legend(fontsize=7)
    fig.suptitle("phase-2 pair construction: time and memory vs training set size")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def measure(args: argparse.Namespace) -> list[dict]:
    rows = []
    for what in ("balance+build", "setfit"):
        for k in args.classes:
            for n in args.sizes:
                impls = ["vectorised"] + (["reference"] if n <= args.reference_max else [])
                got = {}
                for impl in impls:
                    r = run_point(n, k, what, impl, digest=len(impls) > 1)
                    r["total_s"] = r["balance_s"] + r["pairs_s"]
                    r["total_cpu_s"] = r["balance_cpu_s"] + r["pairs_cpu_s"]
                    got[impl] = r
                    rows.append(r)
                    print(f"{what:14s} K={k:5d} n={n:8d} {impl:10s} balance {r['balance_s']:7.2f} s  "
                          f"pairs {r['pairs_s']:7.2f} s  (cpu {r['total_cpu_s']:7.2f} s)  peak +{r['peak_mb']:7.1f} MB"
                          f"  ({r['balanced']} texts, {r['pairs']} pairs)", flush=True)
                if "reference" in got:
                    same = all(got["reference"][f] == got["vectorised"][f] for f in ("digest", "state", "pairs"))
                    if not same:
                        raise SystemExit(f"vectorised and reference differ at n={n}, K={k}, {what}")
                    for r in got.values():
                        r["matches_reference"] = True
    return rows


def read_rows(path: Path) -> list[dict]:
    rows = []
    with path.open(newline="") as handle:
        for r in csv.DictReader(handle):
            rows.append({k: (v if k in ("function", "impl", "matches_reference") else
                             float(v) if k.endswith(("_s", "_mb")) else int(v)) for k, v in r.items()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--reference-max", type=int, default=10000)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "pair_scaling")
    parser.add_argument("--note", default="", help="added to results.md (e.g. what else ran on the machine)")
    parser.add_argument("--replot", action="store_true",
                        help="run nothing: rewrite results.md and the plot from the output folder's results.csv")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    fields = ["function", "classes", "n", "impl", "balanced", "pairs", "balance_s", "pairs_s", "total_s",
              "balance_cpu_s", "pairs_cpu_s", "total_cpu_s", "peak_mb", "matches_reference"]
    rows = read_rows(args.output / "results.csv") if args.replot else measure(args)
    if not args.replot:
        with (args.output / "results.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, **{f: round(r[f], 3) for f in fields if f.endswith(("_s", "_mb"))}})
    plot(rows, args.output / "pair_scaling.png")
    import numpy

    argv = [a for a in sys.argv[1:] if a != "--replot"]
    if "--note" in argv:  # the note is printed below, not repeated in the command
        argv[argv.index("--note") + 1] = '"..."'
    command = "python benchmarks/pair_scaling.py " + " ".join(argv)
    lines = [
        "# Phase-2 pair construction: time and memory vs training set size (issue 12, item 4)",
        "",
        f"Command: `{command.strip()}`  ",
        f"Python {platform.python_version()}, numpy {numpy.__version__}, CPU: {cpu_name()} ({os.cpu_count()} cores "
        f"visible), {time.strftime('%Y-%m-%d')}.",
        "",
        "Synthetic data: 3-12 word texts from a 240-word vocabulary (40 stop words), labels with geometric class sizes "
        "(largest class 100x as likely as the smallest). `balance` is `balance_classes(min_ratio=1.5, max_ratio=4)`; "
        "`pairs` is `build_pairs(augmentation_factor=4, balance_targets=True)` on its output for `balance+build`, "
        "`sample_setfit_pairs(num_iterations=5)` for `setfit`; `total` is their sum. `peak MB` is the growth of the "
        "process's peak RSS over its peak after making the data (one subprocess per row); `total CPU s` is the "
        "process's CPU time over both calls. `old loops` rows run the "
        "per-pair implementation this replaced (the reference in tests/test_pairs_scaling.py); every such row gave "
        "the very same pairs and generator state as the vectorised row above it.",
        "",
    ]
    if args.note:
        lines += [f"**Note:** {args.note}", ""]
    lines += ["| function | classes | n | implementation | balanced texts | pairs | balance s | pairs s | total s "
              "| total CPU s | peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        impl = "vectorised" if r["impl"] == "vectorised" else "old loops"
        lines.append(f"| {r['function']} | {r['classes']} | {r['n']:,} | {impl} | {r['balanced']:,} | {r['pairs']:,} "
                     f"| {r['balance_s']:.2f} | {r['pairs_s']:.2f} | {r['total_s']:.2f} | {r['total_cpu_s']:.2f} "
                     f"| {r['peak_mb']:.0f} |")
    lines += ["", "![time and memory vs n](pair_scaling.png)", ""]
    (args.output / "results.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
