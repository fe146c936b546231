"""Issue 13's studies: the imbalance down-sampling, the size draws, class-weighted FT, the MLM phase, and the
`phasefit study` commands end to end on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from phasefit.cli import main
from phasefit.data import DataError, DatasetSplits, LabelledSplit, imbalance
from phasefit.data.splits import imbalance_sizes
from phasefit.results import read_results
from tests.conftest import tiny_overrides

FAST = ["ft.epochs=1", "ft.max_steps=2", "plots=false"]


def _sets(model_dir: Path, *extra: str) -> list[str]:
    return [arg for item in [*tiny_overrides(model_dir), *FAST, *extra] for arg in ("--set", item)]


def _splits(per_class: dict[str, int]) -> DatasetSplits:
    texts, labels, ids = [], [], []
    for label, count in per_class.items():
        for i in range(count):
            texts.append(f"{label} text {i}")
            labels.append(label)
            ids.append(f"train.csv:{len(ids) + 1}")
    train = LabelledSplit(texts, labels, ids)
    held = LabelledSplit([f"{c} held" for c in per_class], list(per_class), [f"v:{c}" for c in per_class])
    return DatasetSplits(train, held, held, sorted(per_class), None, {"train": {"size": len(train)}})


# --- the imbalance down-sampling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [2, 3, 5, 10, 17, 60])
@pytest.mark.parametrize("ratio", [1, 2, 3, 5, 10, 30, 100])
@pytest.mark.parametrize("largest", [100, 101, 257, 1000])
def test_imbalance_sizes_give_the_ratio_exactly(classes: int, ratio: int, largest: int) -> None:
    sizes = imbalance_sizes(classes, ratio, largest)
    assert len(sizes) == classes
    assert max(sizes) == ratio * min(sizes)  # exact for an integer ratio
    assert min(sizes) >= 1 and max(sizes) <= largest
    assert sizes == sorted(sizes, reverse=True)  # falls geometrically from the first class to the last


def test_imbalance_sizes_fractional_ratio_and_the_floor_of_one() -> None:
    assert imbalance_sizes(3, 2.5, 100) == [100, 63, 40]
    assert imbalance_sizes(4, 10, 10) == [10, 5, 2, 1]  # the smallest class keeps one example
    with pytest.raises(DataError, match="needs at least 30 training examples of the largest class"):
        imbalance_sizes(4, 30, 10)
    with pytest.raises(DataError, match="must be at least 1"):
        imbalance_sizes(4, 0.5, 10)


def test_imbalance_down_samples_train_only_with_seeded_rare_classes() -> None:
    splits = _splits({"a": 120, "b": 110, "c": 130, "d": 100, "e": 140, "f": 100, "g": 100, "h": 105})
    drawn = imbalance(splits, ratio=10, largest=100, seed=3)
    counts = {c: drawn.train.labels.count(c) for c in splits.label_names}
    assert max(counts.values()) == 100 and min(counts.values()) == 10
    assert sorted(counts.values(), reverse=True) == imbalance_sizes(8, 10, 100)
    record = drawn.record["imbalance"]
    assert record["class_counts"] == counts and record["ratio"] == 10
    assert set(record["rare_classes"]) == set(sorted(counts, key=counts.get)[:2])  # the quarter with the fewest
    assert drawn.validation.ids == splits.validation.ids and drawn.test.ids == splits.test.ids  # untouched
    assert set(drawn.train.ids) <= set(splits.train.ids) and drawn.label_names == splits.label_names
    again = imbalance(splits, ratio=10, largest=100, seed=3)
    assert again.train.ids == drawn.train.ids  # seeded
    others = [imbalance(splits, ratio=10, largest=100, seed=s).record["imbalance"]["rare_classes"] for s in range(6)]
    assert len({tuple(r) for r in others}) > 1  # other seeds make other classes rare


def test_imbalance_default_largest_is_the_smallest_class_and_errors_name_the_fix() -> None:
    splits = _splits({"a": 40, "b": 12, "c": 30})
    drawn = imbalance(splits, ratio=4, seed=0)
    assert sorted(drawn.record["imbalance"]["class_counts"].values()) == [3, 6, 12]
    with pytest.raises(DataError, match=r"class .b. has only 12 training example\(s\)\. Lower data\.imbalance_largest to at most 12"):
        imbalance(splits, ratio=2, largest=20, seed=0)
    with pytest.raises(DataError, match="Lower the ratio"):
        imbalance(splits, ratio=20, seed=0)


def test_run_data_applies_the_imbalance_and_fixes_the_split_seed(toy_data_dir: Path) -> None:
    from phasefit.recipes import build_config
    from phasefit.run_data import load_run_data

    config = build_config("ft", settings={"data.path": str(toy_data_dir), "data.imbalance_ratio": 4,
                                          "data.imbalance_largest": 12, "seed": 1})
    splits = load_run_data(config)
    assert sorted(splits.record["imbalance"]["class_counts"].values()) == [3, 6, 12]
    assert len(splits.validation) == 15  # the validation file, whole


# --- the size draws ------------------------------------------------------------------------------------------------


def test_size_draws_share_validation_and_test_and_are_seeded_independent_draws(toy_data_dir: Path) -> None:
    from phasefit.experiments.studies import size_cells
    from phasefit.recipes import build_config, merge_settings
    from phasefit.run_data import load_run_data

    # builtin-style data without validation/test files: the split itself is random, fixed by data.split_seed
    single = toy_data_dir / "train.csv"
    cells = size_cells(str(single), ["ft"], [6, 12], draws=3)
    loaded = {cell.key: load_run_data(build_config(cell.recipe, settings=merge_settings(cell.settings)))
              for cell in cells}
    assert len({tuple(s.validation.ids) for s in loaded.values()}) == 1  # the same validation set throughout
    assert len({tuple(s.test.ids) for s in loaded.values()}) == 1
    for cell in cells:
        assert len(loaded[cell.key].train) == cell.tags["n"]
        assert cell.settings["seed"] == cell.tags["draw"]  # each draw trains with its own seed
    trains = {cell.key: tuple(loaded[cell.key].train.ids) for cell in cells}
    assert len({trains[f"n6/ft/draw-{d}"] for d in range(3)}) == 3  # draws differ
    again = load_run_data(build_config("ft", settings=merge_settings(cells[0].settings)))
    assert tuple(again.train.ids) == trains[cells[0].key]  # and are seeded
    for d in range(3):  # every class in every draw (stratified)
        assert len(set(loaded[f"n6/ft/draw-{d}"].train.labels)) == 3
    # the validation set is a capped stratified subset by default (SIZE_VALIDATION), the whole split on request
    assert all(cell.settings["data.max_validation_examples"] == 500 for cell in cells)
    capped = size_cells(str(single), ["ft"], [6], draws=2, validation_size=3)
    validations = [load_run_data(build_config("ft", settings=merge_settings(c.settings))).validation for c in capped]
    assert len(validations[0]) == 3 and validations[0].ids == validations[1].ids
    assert "data.max_validation_examples" not in size_cells(str(single), ["ft"], [6], 1, validation_size=None)[0].settings


# --- class-weighted cross-entropy ----------------------------------------------------------------------------------


def test_balanced_class_weights_follow_the_sklearn_rule_and_weigh_the_loss() -> None:
    from phasefit.models.classifier import logits_and_loss
    from phasefit.phases.ft import class_weights

    labels = [0] * 6 + [1] * 2 + [3] * 4  # class 2 absent
    weights = class_weights(labels, 4, "balanced")
    assert weights.tolist() == pytest.approx([12 / (3 * 6), 12 / (3 * 2), 1.0, 12 / (3 * 4)])
    assert class_weights(labels, 4, "none") is None
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 1, 1, 3, 0])
    weighted = logits_and_loss(logits, y, weights)["loss"]
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    assert weighted.item() == pytest.approx((weights[y] * per).sum().item() / weights[y].sum().item(), rel=1e-6)
    assert logits_and_loss(logits, y)["loss"].item() == pytest.approx(per.mean().item(), rel=1e-6)


def test_ft_balanced_trains_and_saves_no_weights(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                 tmp_path: Path) -> None:
    from phasefit.pipeline import train
    from phasefit.recipes import build_config

    config = build_config("ft-balanced", overrides=[*tiny_overrides(tiny_model_dir), *FAST,
                                                    f"data.path={toy_data_dir_module}", "data.imbalance_ratio=4"])
    result = train(config, tmp_path / "run")
    assert result.classifier.class_weight is None  # a training-time setting only
    assert result.metrics["imbalance"]["ratio"] == 4
    assert result.metrics["phases"][0]["steps"] == 2


def test_new_keys_at_their_defaults_keep_earlier_runs_reusable() -> None:
    from phasefit.fingerprint import config_differences
    from phasefit.recipes import build_config

    now = build_config("3phase", settings={"trainer": {"fused_optimizer": False}}).to_dict()
    before = json.loads(json.dumps(now))
    del before["mlm"]  # a config.yaml written before the mlm phase, class weights and the studies existed
    for key in ("split_seed", "imbalance_ratio", "imbalance_largest", "imbalance_seed"):
        del before["data"][key]
    del before["ft"]["class_weight"]
    assert config_differences(before, now) == []
    weighted = build_config("ft-balanced", settings={"trainer": {"fused_optimizer": False}}).to_dict()
    assert "ft.class_weight: None -> 'balanced'" in config_differences(before, weighted)


# --- the MLM phase -------------------------------------------------------------------------------------------------


def test_masking_touches_only_non_special_tokens_and_is_seeded_per_epoch(tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from phasefit.losses.mlm import MaskingCollator
    from phasefit.phases.base import tokenize

    encoder = SentenceTransformer(str(tiny_model_dir), device="cpu")
    tokenizer = encoder.tokenizer
    texts = ["what is the weather in paris", "play some jazz songs", "book a table", "will it rain tomorrow"]
    items = [{**tokens, "index": i} for i, tokens in enumerate(tokenize(encoder, texts, 32))]

    class Epoch:
        epoch = 0

    epoch = Epoch()
    collator = MaskingCollator(tokenizer, 0.9, seed=7, epoch_source=epoch)
    batch = collator(items)["mlm"]
    special = set(tokenizer.all_special_ids)
    padded = tokenizer.pad([{k: v for k, v in it.items() if k != "index"} for it in items], return_tensors="pt")
    original = padded["input_ids"]
    predicted = batch["labels"] != -100
    assert predicted.any()
    assert not (predicted & torch.isin(original, torch.tensor(sorted(special)))).any()  # never [CLS], [SEP], [PAD]
    assert torch.equal(batch["labels"][predicted], original[predicted])  # the labels are the original tokens
    unmasked = ~predicted
    assert torch.equal(batch["input_ids"][unmasked], original[unmasked])  # nothing else changed
    assert torch.equal(collator(items)["mlm"]["labels"], batch["labels"])  # same (seed, epoch): same masks
    halves = [collator(items[:2])["mlm"], collator(items[2:])["mlm"]]  # an example's mask: not its batch's
    for part, rows in zip(halves, (range(0, 2), range(2, 4))):
        for row_in_part, row in enumerate(rows):
            length = len(items[row]["input_ids"])
            assert torch.equal(part["labels"][row_in_part, :length], batch["labels"][row, :length])
    epoch.epoch = 1
    assert not torch.equal(collator(items)["mlm"]["labels"], batch["labels"])  # afresh every epoch


def test_mlm_loss_trains_the_encoder_in_place(tiny_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from phasefit.losses.dae import transformer_of
    from phasefit.losses.mlm import MaskedLanguageModelLoss, MaskingCollator
    from phasefit.phases.base import tokenize

    encoder = SentenceTransformer(str(tiny_model_dir), device="cpu")
    loss = MaskedLanguageModelLoss(encoder)
    assert loss.head_source == "random"  # a sentence-transformers checkpoint has no MLM head
    transformer = transformer_of(encoder)
    assert loss.model.get_output_embeddings().weight is transformer.get_input_embeddings().weight  # tied
    texts = ["what is the weather in paris", "play some jazz songs", "book a table for two"] * 2
    items = [{**t, "index": i} for i, t in enumerate(tokenize(encoder, texts, 32))]
    batch = MaskingCollator(encoder.tokenizer, 0.5, seed=0)(items)["mlm"]
    before = transformer.encoder.layer[0].attention.self.query.weight.detach().clone()
    optimizer = torch.optim.SGD(loss.parameters(), lr=0.5)
    loss(batch).backward()
    optimizer.step()
    assert not torch.equal(before, transformer.encoder.layer[0].attention.self.query.weight)


def test_mlm_keeps_a_pretrained_head(tmp_path: Path, tiny_hf_dir: Path) -> None:
    from transformers import BertForMaskedLM

    from phasefit.config import ModelConfig
    from phasefit.losses.mlm import MaskedLanguageModelLoss
    from phasefit.models.encoder import load_encoder

    torch.manual_seed(1)
    with_head = BertForMaskedLM.from_pretrained(str(tiny_hf_dir))  # head random here, then saved as the checkpoint's
    folder = tmp_path / "bert-mlm"
    with_head.save_pretrained(str(folder))
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(str(tiny_hf_dir)).save_pretrained(str(folder))
    loss = MaskedLanguageModelLoss(load_encoder(ModelConfig(name=str(folder))))
    assert loss.head_source == "pretrained"
    expected = with_head.cls.predictions.transform.dense.weight
    assert torch.equal(loss.model.cls.predictions.transform.dense.weight, expected)


def test_mlm_cl_ft_runs_two_steps_per_phase(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    from phasefit.pipeline import train
    from phasefit.recipes import build_config

    config = build_config("mlm-cl-ft", overrides=[*tiny_overrides(tiny_model_dir), *FAST, "mlm.max_steps=2",
                                                  "cl.max_steps=2", f"data.path={toy_data_dir_module}"])
    metrics = train(config, tmp_path / "run").metrics
    phases = {p["name"]: p for p in metrics["phases"]}
    assert list(phases) == ["mlm", "cl", "ft"]
    assert phases["mlm"]["steps"] == 2 and phases["mlm"]["lm_head"] == "random"
    assert phases["mlm"]["texts"] == 48 and phases["mlm"]["validation_knn_accuracy"] is not None


# --- the commands --------------------------------------------------------------------------------------------------


def test_study_imbalance_reports_rare_class_recall(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "imb"
    code = main(["study", "imbalance", "--data", str(toy_data_dir_module), "--recipes", "ft", "ft-balanced",
                 "--ratios", "1", "4", "--largest", "12", "--seeds", "0", "--output", str(out),
                 *_sets(tiny_model_dir)])
    assert code == 0
    rows = read_results(out)
    assert len(rows) == 4
    assert {(r["ratio"], r["train_size"]) for r in rows} == {(1.0, 36), (4.0, 21)}  # 12+12+12; 12+6+3
    assert all(0 <= r["test_rare_class_recall"] <= 1 for r in rows)
    report = (out / "report.md").read_text()
    assert "Imbalance study" in report and "test recall of the rare classes" in report
    assert (out / "report_files" / "study_imbalance.png").is_file()
    assert "ratio=4" in report
    # ft-balanced minus ft, paired by seed within each ratio, on macro-F1 and on the rare classes' recall
    assert "*test recall of the rare classes: each recipe minus ft, paired by seed" in report
    assert report.count("| ft-balanced | 1 |") >= 4  # (2 ratios x 2 metrics, and the accuracy table)


def test_study_size_and_phase1_commands(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    out = tmp_path / "size"
    code = main(["study", "size", "--data", str(toy_data_dir_module), "--recipes", "ft", "--sizes", "6", "12",
                 "--draws", "2", "--output", str(out), *_sets(tiny_model_dir)])
    assert code == 0
    rows = read_results(out)
    assert sorted((r["n"], r["draw"]) for r in rows) == [(6, 0), (6, 1), (12, 0), (12, 1)]
    manifests = [json.loads((out / r["cell"] / "split.json").read_text())["ids"] for r in rows]
    assert len({json.dumps(m["test"]) for m in manifests}) == 1
    assert "Size study" in (out / "report.md").read_text()

    out = tmp_path / "phase1"
    code = main(["study", "phase1", "--data", str(toy_data_dir_module), "--recipes", "cl-ft", "mlm-cl-ft",
                 "--seeds", "0", "--train-size", "9", "--validation-size", "6", "--output", str(out),
                 *_sets(tiny_model_dir, "mlm.max_steps=2", "cl.max_steps=2")])
    assert code == 0
    rows = read_results(out)  # the caps: seeded stratified subsets, the same rows for both recipes of a seed
    assert {(r["train_size"], r["validation_size"]) for r in rows} == {(9, 6)}
    manifests = [json.loads((out / r["cell"] / "split.json").read_text())["ids"] for r in rows]
    assert manifests[0] == manifests[1]
    report = (out / "report.md").read_text()
    assert "Phase-1 study" in report and "k-NN after phase 1" in report and "k-NN after FT" in report
    mlm_row = next(line for line in report.splitlines() if "| mlm-cl-ft |" in line and "(n=1)" in line)
    assert mlm_row.count("(n=1)") >= 6  # before, after mlm, after cl, after ft, accuracy, F1 (and minutes)
    cl_row = next(line for line in report.splitlines() if "| cl-ft |" in line and "(n=1)" in line)
    assert cl_row.split("|")[4].strip() == "–"  # cl-ft has no phase 1
    assert (out / "report_files" / "study_phase1.png").is_file()
    assert "*test accuracy: each recipe minus cl-ft, paired by seed" in report


# --- peers in a study ------------------------------------------------------------------------------------------------


def test_study_runs_peers_on_the_recipes_rows_and_refuses_their_stale_cells(tiny_model_dir: Path,
                                                                            toy_data_dir_module: Path,
                                                                            tmp_path: Path, capsys: Any) -> None:
    def study(output: Path) -> list[str]:
        return ["study", "size", "--data", str(toy_data_dir_module), "--recipes", "ft", "probe", "--sizes", "9",
                "--draws", "2", "--output", str(output), *_sets(tiny_model_dir)]

    out = tmp_path / "size"
    args = study(out)
    assert main(args) == 0
    rows = read_results(out)
    assert sorted((r["recipe"], r["draw"]) for r in rows) == [("ft", 0), ("ft", 1), ("probe", 0), ("probe", 1)]
    for draw in (0, 1):  # the probe trained and was scored on exactly the rows ft used
        ft_ids = json.loads((out / f"n9/ft/draw-{draw}" / "split.json").read_text())["ids"]
        probe_ids = json.loads((out / f"n9/probe/draw-{draw}" / "split.json").read_text())["ids"]
        assert ft_ids == probe_ids
    probe = [r for r in rows if r["recipe"] == "probe"]
    assert all(r["train_size"] == 9 and 0 <= r["test_accuracy"] <= 1 and r["phases"] == "" for r in probe)
    assert "| probe | (whole run) |" in (out / "report.md").read_text()  # its cost: one whole-run time
    # published (small files only) and restored into a fresh output: the study resumes there without training
    from phasefit.experiments.grid import publish_cells, restore_cells

    assert publish_cells(out, tmp_path / "published") == 4
    assert not list((tmp_path / "published").rglob("*.safetensors"))
    assert (tmp_path / "published" / "n9/ft/draw-0/curves").is_dir()  # the report draws them from a restored cell
    fresh = tmp_path / "fresh"
    assert restore_cells(tmp_path / "published", fresh) == 4
    restored = {p: p.stat().st_mtime_ns for p in fresh.rglob("metrics.json")}
    assert main(study(fresh)) == 0
    assert {p: p.stat().st_mtime_ns for p in fresh.rglob("metrics.json")} == restored
    assert len(read_results(fresh)) == 4
    before = (out / "n9/probe/draw-0/metrics.json").stat().st_mtime_ns
    assert main(args) == 0  # resumed: nothing retrains
    assert (out / "n9/probe/draw-0/metrics.json").stat().st_mtime_ns == before
    capsys.readouterr()
    # another token limit: the probe's finished cell is stale, named, and not retrained without --overwrite
    assert main(["study", "size", "--data", str(toy_data_dir_module), "--recipes", "probe", "--sizes", "9",
                 "--draws", "1", "--output", str(out), *_sets(tiny_model_dir, "data.max_length=8")]) != 0
    assert "n9/probe/draw-0: the probe settings" in capsys.readouterr().err
    assert (out / "n9/probe/draw-0/metrics.json").stat().st_mtime_ns == before


def test_peer_settings_are_checked_and_kept_out_of_the_recipes_configs(tiny_model_dir: Path,
                                                                       toy_data_dir_module: Path) -> None:
    from phasefit.config import ConfigError
    from phasefit.experiments.grid import Cell, PeerCell, cell_config
    from phasefit.experiments.peers import peer_settings

    base = {"data.path": str(toy_data_dir_module), "setfit.num_iterations": 2}
    ft = cell_config(Cell("a", "ft", {"seed": 1}), base)
    assert not isinstance(ft, PeerCell) and ft.seed == 1
    probe = cell_config(Cell("b", "probe", {"seed": 1}), base)
    assert isinstance(probe, PeerCell) and set(probe.settings) == {"c_grid"}  # the probe's C grid (issue 29)
    assert probe.config.data.path == str(toy_data_dir_module) and probe.config.seed == 1
    assert peer_settings("setfit", {"setfit": {"num_iterations": 2}}) == {"num_iterations": 2, "num_epochs": 1,
                                                                          "batch_size": 16}
    with pytest.raises(ConfigError, match="setfit.iterations"):
        peer_settings("setfit", {"setfit": {"iterations": 2}})


def test_a_missing_setfit_library_stops_the_grid_before_it_trains(toy_data_dir_module: Path, monkeypatch: Any) -> None:
    import importlib.util

    from phasefit.config import ConfigError
    from phasefit.experiments.grid import Cell, cell_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "setfit" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[bench\]'"):
        cell_config(Cell("s", "setfit"), {"data.path": str(toy_data_dir_module)})


def test_peers_honour_evaluate_test_refuse_text_pairs_and_transfer(tiny_model_dir: Path, toy_data_dir_module: Path,
                                                                  tmp_path: Path) -> None:
    from phasefit.config import ConfigError
    from phasefit.experiments.grid import Cell, cell_config, train_cell
    from phasefit.experiments.peers import PEER_FILE, peer_config_hash
    from phasefit.experiments.protocols import run_transfer
    from phasefit.pipeline import load_run
    from phasefit.run_directory import RunDirectoryError

    from phasefit.recipes import merge_settings, settings_from_overrides

    base = merge_settings(settings_from_overrides(tiny_overrides(tiny_model_dir)), {"data.path": str(toy_data_dir_module)})
    cell = cell_config(Cell("p", "probe"), {**base, "evaluate_test": False})
    metrics = train_cell(cell, tmp_path / "probe")
    assert metrics["test"] is None and 0 <= metrics["validation"]["accuracy"] <= 1
    scored = cell_config(Cell("p", "probe"), base)
    assert peer_config_hash("probe", cell.config, {}) != peer_config_hash("probe", scored.config, {})
    # the folder says it is a peer's, so predict/export do not mistake its ft config.yaml for a phasefit run
    assert json.loads((tmp_path / "probe" / PEER_FILE).read_text())["peer"] == "probe"
    with pytest.raises(RunDirectoryError, match="peer"):
        load_run(tmp_path / "probe")

    pairs = tmp_path / "pairs"
    pairs.mkdir()
    rows = "".join(f"q{i},a{i},{'yes' if i % 2 else 'no'}\n" for i in range(12))
    for name in ("train", "validation", "test"):
        (pairs / f"{name}.csv").write_text("text,text_pair,label\n" + rows)
    paired = cell_config(Cell("p", "probe"), {**base, "data.path": str(pairs), "data.text_pair_column": "text_pair"})
    with pytest.raises(ConfigError, match="text pairs"):
        train_cell(paired, tmp_path / "paired")
    assert not (tmp_path / "paired").exists()

    with pytest.raises(ConfigError, match="leave out the peer"):
        run_transfer(["ft", "probe"], str(toy_data_dir_module), str(toy_data_dir_module), 2, 1, [0], tmp_path / "t")
    assert not (tmp_path / "t").exists()


def test_the_imbalance_study_default_largest_class_is_cpu_sized(tmp_path: Path) -> None:
    from phasefit.experiments.studies import IMBALANCE_LARGEST, default_largest

    def data(counts: dict[str, int]) -> str:
        folder = tmp_path / "-".join(f"{k}{v}" for k, v in counts.items())
        folder.mkdir()
        rows = "".join(f"{label} example {i},{label}\n" for label, n in counts.items() for i in range(n))
        (folder / "train.csv").write_text("text,label\n" + rows)
        held = "".join(f"{label} held,{label}\n" for label in counts)
        (folder / "validation.csv").write_text("text,label\n" + held)
        (folder / "test.csv").write_text("text,label\n" + held)
        return str(folder)

    assert IMBALANCE_LARGEST == 20
    assert default_largest(data({"a": 30, "b": 25})) == 20
    assert default_largest(data({"a": 30, "b": 25, "c": 8})) == 8  # every class must give its share


def test_setfit_peer_trains_on_the_tiny_model(tiny_model_dir: Path, toy_data_dir_module: Path, tmp_path: Path) -> None:
    pytest.importorskip("setfit")
    out = tmp_path / "phase1"
    assert main(["study", "phase1", "--data", str(toy_data_dir_module), "--recipes", "setfit", "--seeds", "0",
                 "--output", str(out), *_sets(tiny_model_dir, "setfit.num_iterations=1")]) == 0
    row = read_results(out)[0]
    assert row["recipe"] == "setfit" and 0 <= row["test_accuracy"] <= 1
    assert (out / "setfit/seed-0/body/modules.json").is_file()
