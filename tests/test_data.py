"""Unit tests for phasefit.data loading, splitting, few-shot draws and the max-length policy (toy files, no network)."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from phasefit.data import (
    DataError,
    DatasetSplits,
    LabelledSplit,
    builtin_data_path,
    few_shot,
    load_splits,
    resolve_max_length,
)

SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"


def toy_rows(per_class: dict[str, int]) -> list[dict[str, str]]:
    """Distinct texts, ``per_class[label]`` of each label, labels interleaved as in real files."""
    rows = [{"text": f"{label} example {i}", "label": label} for label, n in per_class.items() for i in range(n)]
    return sorted(rows, key=lambda r: (int(r["text"].rsplit(" ", 1)[1]), r["label"]))


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...] = ("text", "label")) -> Path:
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, index=False)
    return path


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def toy_train(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "train.csv", toy_rows({"a": 30, "b": 20, "c": 10}))


# --- loading -------------------------------------------------------------------------------------------------------


def test_csv_loads_verbatim_with_ids_and_numeric_label_order(tmp_path: Path) -> None:
    rows = [{"text": f"  Mixed CASE text {i}  ", "label": str(i % 3 * 5)} for i in range(30)]  # labels 0, 5, 10
    write_csv(tmp_path / "train.csv", rows)
    write_csv(tmp_path / "test.csv", rows[:6])
    write_csv(tmp_path / "dev.csv", rows[6:12])
    splits = load_splits(tmp_path)
    assert splits.label_names == ["0", "5", "10"]  # numeric, not string order
    assert splits.validation.texts[0] == "  Mixed CASE text 6  "
    assert splits.validation.ids[0] == "dev.csv:1"
    assert splits.record["validation"]["source"] == "file" and splits.record["train"]["source"] == "file"
    assert len(splits.train) == 30 and splits.train.ids[-1] == "train.csv:30"


def test_multiline_quoted_fields_count_as_one_row(tmp_path: Path) -> None:
    long_text = "line one, with comma\n" + "x" * 200_000 + '\n"quoted"'
    write_csv(tmp_path / "train.csv", [{"text": long_text, "label": "a"}, {"text": "b text", "label": "b"}] * 5)
    splits = load_splits(tmp_path / "train.csv", validation_fraction=0.2, test_fraction=0.2)
    assert long_text in splits.train.texts + splits.validation.texts + splits.test.texts
    bad = tmp_path / "bad.csv"
    write_text(bad, 'text,label\n"multi\nline",a\n"ok",b\n"",a\n')
    with pytest.raises(DataError, match=r"bad.csv row 3: empty text in column 'text'. Remove the row or fill"):
        load_splits(bad)


@pytest.mark.parametrize("ext", ["tsv", "jsonl", "json", "parquet", "json-array"])
def test_formats_load_the_same_and_int_labels_match_strings(tmp_path: Path, ext: str) -> None:
    rows = [{"text": f"text {i}", "label": i % 2} for i in range(20)]  # int labels in the file
    frame = pd.DataFrame(rows)
    if ext == "tsv":
        frame.to_csv(tmp_path / "train.tsv", sep="\t", index=False)
    elif ext in ("jsonl", "json"):
        frame.to_json(tmp_path / f"train.{ext}", orient="records", lines=True)
    elif ext == "json-array":
        write_text(tmp_path / "train.json", json.dumps(rows))
    else:
        frame.to_parquet(tmp_path / "train.parquet")
    write_csv(tmp_path / "test.csv", [{"text": "t", "label": "1"}, {"text": "u", "label": "0"}])  # "1" == 1
    splits = load_splits(tmp_path)
    assert splits.label_names == ["0", "1"]
    assert sorted(splits.train.texts + splits.validation.texts) == sorted(r["text"] for r in rows)
    assert splits.label_ids(splits.test) == [1, 0]


def test_text_pair_column(tmp_path: Path) -> None:
    rows = [{"text": f"q{i}", "pair": f"p{i}", "label": i % 2} for i in range(20)]
    write_csv(tmp_path / "train.csv", rows, ("text", "pair", "label"))
    splits = load_splits(tmp_path, text_pair_column="pair")
    assert splits.train.text_pairs == [t.replace("q", "p") for t in splits.train.texts]


def test_builtin_data_path_and_spec() -> None:
    folder = builtin_data_path()
    assert (folder / "train.csv").is_file()
    splits = load_splits("builtin:snips")
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 328
    with pytest.raises(DataError, match="no built-in data set 'nope'.*available: \\['snips'"):
        builtin_data_path("nope")


# --- user errors: each names the file, row / column and the fix ---------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data path not found: .*nowhere. Set data.path"):
        load_splits(tmp_path / "nowhere")


def test_unknown_extension(tmp_path: Path) -> None:
    write_text(tmp_path / "train.xlsx", "x")
    with pytest.raises(DataError, match=r"train.xlsx: unsupported file type '.xlsx'; supported: .csv, .tsv, .jsonl"):
        load_splits(tmp_path / "train.xlsx")


def test_folder_without_train_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "training.csv", toy_rows({"a": 3, "b": 3}))
    match = r"no training file. Looked for train.<ext> .*dev.*csv\|tsv\|jsonl\|json\|parquet"
    with pytest.raises(DataError, match=match):
        load_splits(tmp_path)


def test_several_train_files(tmp_path: Path, toy_train: Path) -> None:
    pd.read_csv(toy_train).to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    with pytest.raises(DataError, match=r"several train files \['train.csv', 'train.jsonl'\]"):
        load_splits(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"text_column": "sentence"},
            r"train.csv: no column 'sentence'; columns present: \['text', 'label'\]\. Set data.text_column",
        ),
        ({"label_column": "intent"}, r"train.csv: no column 'intent'; .*Set data.label_column"),
        ({"text_pair_column": "second"}, r"no column 'second'.*Set data.text_pair_column"),
    ],
)
def test_missing_columns(toy_train: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_splits(toy_train, **kwargs)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("text,label\nfine,a\n   ,b\n", r"train.csv row 2: empty text in column 'text'\. Remove the row or fill"),
        ("text,label\nfine,a\n\nalso,b\n", r"train.csv row 2: empty text"),
        ("text,label\nfine,a\nalso fine,\n", r"train.csv row 2: missing label in column 'label'\. Fill the label"),
    ],
)
def test_empty_text_and_label_csv(tmp_path: Path, content: str, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_splits(write_text(tmp_path / "train.csv", content))


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"text": None, "label": "a"}, r"train.jsonl row 3: missing or non-text value None in column 'text'"),
        ({"text": float("nan"), "label": "a"}, r"train.jsonl row 3: missing or non-text value nan"),
        ({"text": 123, "label": "a"}, r"row 3: missing or non-text value 123 .*Fill the text or remove the row"),
        ({"text": "ok", "label": None}, r"train.jsonl row 3: missing label in column 'label'"),
        ({"text": "ok"}, r"train.jsonl row 3: missing label"),
    ],
)
def test_non_text_and_missing_label_jsonl(tmp_path: Path, record: dict, match: str) -> None:
    lines = [json.dumps({"text": "x", "label": "a"}), json.dumps({"text": "y", "label": "b"}), json.dumps(record)]
    write_text(tmp_path / "train.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError, match=match):
        load_splits(tmp_path / "train.jsonl")


def test_invalid_json_line(tmp_path: Path) -> None:
    write_text(tmp_path / "train.jsonl", '{"text": "x", "label": "a"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"train.jsonl row 2: not valid JSON .*one JSON object per line"):
        load_splits(tmp_path / "train.jsonl")


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl"])
def test_undecodable_bytes(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"train.{ext}"
    path.write_bytes("text,label\nfine,a\n".encode() + "café,b\n".encode("latin-1"))
    match = rf"train.{ext} byte 21 \(line 3 of the file\): not valid UTF-8 \(byte 0xe9\)\. Re-save the file as UTF-8"
    with pytest.raises(DataError, match=match):
        load_splits(path)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    body = "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(20))
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    assert load_splits(path).num_labels == 2


def test_label_unseen_in_training(tmp_path: Path, toy_train: Path) -> None:
    write_csv(tmp_path / "test.csv", [{"text": f"t{i}", "label": label} for i, label in enumerate(["a", "zzz", "zzz"])])
    match = r"test.csv row 2: label 'zzz' never occurs in the training data \(train.csv\)\. Fix the label"
    with pytest.raises(DataError, match=match):
        load_splits(tmp_path)


def test_only_one_class(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", toy_rows({"only": 10}))
    with pytest.raises(DataError, match=r"train.csv: only one class \('only'\) .*at least 2\. Check data.label_column"):
        load_splits(path)


def test_class_too_small_to_split(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", toy_rows({"a": 30, "b": 30, "rare": 1}))
    match = r"train.csv: class 'rare' has 1 example\(s\), but a stratified test split needs at least 2 .*drop the class"
    with pytest.raises(DataError, match=match):
        load_splits(path)


def test_class_too_small_after_test_split(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", toy_rows({"a": 30, "b": 30, "pair": 2}))
    match = r"after taking the test split\): class 'pair' has 1 .*stratified validation split"
    with pytest.raises(DataError, match=match):
        load_splits(tmp_path, test_fraction=0.5, validation_fraction=0.2)


def test_fraction_too_small_for_classes(toy_train: Path) -> None:
    match = r"stratified test split of 1 out of 60 rows cannot hold one example of each of the 3 classes"
    with pytest.raises(DataError, match=match):
        load_splits(toy_train, test_fraction=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"validation_fraction": 0.0}, r"data.validation_fraction=0.0 must lie strictly between 0 and 1"),
        ({"test_fraction": 1.5}, r"data.test_fraction=1.5"),
        ({"max_train_examples": 0}, r"data.max_train_examples=0 must be a positive"),
        ({"max_train_examples": 2}, r"max_train_examples=2 is fewer than the 3 classes"),
        ({"label_depth": 2}, r"data.label_depth=2 needs data.label_separator"),
    ],
)
def test_bad_settings(toy_train: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        load_splits(toy_train, **kwargs)


# --- hierarchical labels --------------------------------------------------------------------------------------------

NEWS = {"comp.sys.mac.hardware": 10, "comp.graphics": 10, "alt.atheism": 10, "comp.sys.ibm.pc": 10}


def test_uneven_depth_names_rows_and_depths(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", toy_rows(NEWS))
    first = pd.read_csv(path).label[0]
    match = rf"train.csv row \d+: label '.*' has \d levels but train.csv row 1 label '{first}' has \d .*label_depth=N"
    with pytest.raises(DataError, match=match):
        load_splits(path, label_separator=".")


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (2, ["alt.atheism", "comp.graphics", "comp.sys"]),
        (3, ["alt.atheism.atheism", "comp.graphics.graphics", "comp.sys.ibm", "comp.sys.mac"]),
    ],
)
def test_label_depth_truncates_and_pads(tmp_path: Path, depth: int, expected: list[str]) -> None:
    splits = load_splits(write_csv(tmp_path / "train.csv", toy_rows(NEWS)), label_separator=".", label_depth=depth)
    assert splits.label_names == expected
    assert splits.levels(expected[-1]) == tuple(expected[-1].split("."))
    assert all(len(splits.levels(label)) == depth for label in splits.test.labels)


def test_even_hierarchy_keeps_full_path(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "train.csv", toy_rows({"comp.sys.mac": 10, "comp.sys.ibm": 10, "rec.sport.ball": 10}))
    splits = load_splits(path, label_separator=".")
    assert splits.label_names == ["comp.sys.ibm", "comp.sys.mac", "rec.sport.ball"]
    assert splits.levels("comp.sys.mac") == ("comp", "sys", "mac") and splits.label_separator == "."


# --- splitting ------------------------------------------------------------------------------------------------------


def test_missing_splits_are_stratified_seeded_and_disjoint(toy_train: Path) -> None:
    splits = load_splits(toy_train, seed=3)
    ids = splits.train.ids + splits.validation.ids + splits.test.ids
    assert len(ids) == len(set(ids)) == 60
    assert (len(splits.test), len(splits.validation), len(splits.train)) == (6, 12, 42)  # 10%, 20% of all 60
    assert Counter(splits.test.labels) == {"a": 3, "b": 2, "c": 1}
    assert Counter(splits.validation.labels) == {"a": 6, "b": 4, "c": 2}
    again = load_splits(toy_train, seed=3)
    assert again.test.ids == splits.test.ids and again.record == splits.record
    assert load_splits(toy_train, seed=4).test.ids != splits.test.ids
    record = splits.record
    assert record["seed"] == 3 and record["test_fraction"] == 0.1 and record["validation_fraction"] == 0.2
    assert record["test"]["source"] == record["validation"]["source"] == "stratified-from-train"
    assert record["train"]["source"] == "stratified-from-train" and record["train"]["size"] == 42
    assert len(record["test"]["ids_sha1"]) == 40


def test_given_test_only_validation_is_made(tmp_path: Path, toy_train: Path) -> None:
    write_csv(tmp_path / "test.csv", toy_rows({"a": 2, "b": 2}))
    splits = load_splits(tmp_path)
    assert splits.record["test"]["source"] == "file" and len(splits.test) == 4
    assert len(splits.validation) == 12 and len(splits.train) == 48


def test_max_examples_subsets_are_stratified(tmp_path: Path) -> None:
    write_csv(tmp_path / "train.csv", toy_rows({"a": 300, "b": 100, "c": 10}))
    write_csv(tmp_path / "test.csv", toy_rows({"a": 50, "b": 50, "c": 1}))
    splits = load_splits(tmp_path, max_train_examples=41, max_eval_examples=20, seed=1)
    assert len(splits.train) == 41 and set(splits.train.labels) == {"a", "b", "c"}
    assert Counter(splits.train.labels)["a"] == 30
    assert len(splits.validation) == 20 and len(splits.test) == 20 and "c" in splits.test.labels
    assert splits.record["train"]["subset_of"] == 410 - 82 and splits.record["test"]["subset_of"] == 101
    assert splits.record["train"]["size"] == 41


# --- containers, few-shot ------------------------------------------------------------------------------------------


def make_splits(per_class: dict[str, int]) -> DatasetSplits:
    rows = toy_rows(per_class)
    train = LabelledSplit([r["text"] for r in rows], [r["label"] for r in rows], [f"t:{i}" for i in range(len(rows))])
    names = sorted(per_class)
    other = LabelledSplit(names, names, [f"v:{i}" for i in range(len(names))])
    return DatasetSplits(train, other, other, names, None, {"train": {"source": "file", "size": len(rows)}})


def test_label_ids_levels_num_labels() -> None:
    splits = make_splits({"x": 2, "y": 3})
    assert splits.num_labels == 2 and splits.label_ids(splits.validation) == [0, 1]
    assert splits.levels("x") == ("x",)
    with pytest.raises(DataError, match=r"label 'q' is not among the training labels"):
        splits.label_ids(LabelledSplit(["t"], ["q"], ["i"]))


@pytest.mark.parametrize("seed", range(5))
def test_few_shot_n_follows_distribution(seed: int) -> None:
    splits = make_splits({"a": 60, "b": 30, "c": 10})
    drawn = few_shot(splits, n=20, seed=seed)
    assert Counter(drawn.train.labels) == {"a": 12, "b": 6, "c": 2}
    assert drawn.validation is splits.validation and drawn.label_names == splits.label_names
    assert drawn.record["few_shot"]["n"] == 20 and drawn.record["train"]["size"] == 20
    assert few_shot(splits, n=20, seed=seed).train.ids == drawn.train.ids
    assert set(drawn.train.ids) <= set(splits.train.ids)


@pytest.mark.parametrize("seed", range(5))
def test_few_shot_keeps_every_class_when_sklearn_cannot(seed: int) -> None:
    splits = make_splits({"a": 90, "b": 8, "rare": 1, "tiny": 1})  # sklearn refuses 1-example classes
    drawn = few_shot(splits, n=10, seed=seed)
    counts = Counter(drawn.train.labels)
    assert len(drawn.train) == 10 and set(counts) == {"a", "b", "rare", "tiny"}
    assert counts["a"] >= counts["b"] >= 1
    assert few_shot(splits, n=10, seed=seed).train.ids == drawn.train.ids


def test_few_shot_k_per_class() -> None:
    splits = make_splits({"a": 60, "b": 30, "c": 10})
    drawn = few_shot(splits, k_per_class=4, seed=0)
    assert Counter(drawn.train.labels) == {"a": 4, "b": 4, "c": 4}
    assert few_shot(splits, k_per_class=4, seed=1).train.ids != drawn.train.ids
    assert drawn.record["few_shot"]["class_counts"] == {"a": 4, "b": 4, "c": 4}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 200}, r"few_shot n=200 is outside 1..100"),
        ({"k_per_class": 11}, r"class 'c' has only 10 training example\(s\)\. Lower k_per_class to at most 10"),
        ({"n": 5, "k_per_class": 2}, r"exactly one of n or k_per_class"),
        ({}, r"exactly one of n or k_per_class"),
    ],
)
def test_few_shot_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match):
        few_shot(make_splits({"a": 60, "b": 30, "c": 10}), seed=0, **kwargs)


# --- max length policy ---------------------------------------------------------------------------------------------


def word_lengths(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def test_resolve_max_length_policies() -> None:
    texts = [" ".join(["w"] * n) for n in range(1, 101)]
    assert resolve_max_length("model", texts, word_lengths, 512) == 512
    assert resolve_max_length("data", texts, word_lengths, 512) == 120  # ceil(100 * 1.2)
    assert resolve_max_length("data", texts, word_lengths, 64) == 64  # clipped to the model
    assert resolve_max_length(64, texts, word_lengths, 512) == 64
    assert resolve_max_length("64", texts, word_lengths, 512) == 64
    assert resolve_max_length(2, texts, word_lengths, 512) == 8  # at least 8
    seen: list[int] = []

    def counting(batch: list[str]) -> list[int]:
        seen.append(len(batch))
        return word_lengths(batch)

    sampled = resolve_max_length("sample", texts, counting, 512, seed=0)
    assert seen == [10] and sampled <= 120 and sampled == resolve_max_length("sample", texts, word_lengths, 512, seed=0)
    assert resolve_max_length("sample", texts[:3], counting, 512) >= 8 and seen[-1] == 1


@pytest.mark.parametrize("policy", ["longest", 0, 1.5, True])
def test_resolve_max_length_rejects_bad_policy(policy: object) -> None:
    with pytest.raises(ValueError, match=r"\('model', 'data', 'sample'\)"):
        resolve_max_length(policy, ["a"], word_lengths, 512)  # type: ignore[arg-type]


# --- Hugging Face (no network) -------------------------------------------------------------------------------------


def test_hf_dataset_not_cached_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "ds")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DataError, match=r"hf:someone/absent: not in the local Hugging Face cache.*Download it once"):
        load_splits("hf:someone/absent")


def test_hf_dataset_from_cache_maps_class_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    from phasefit.data import loading

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    rows = {"text": [f"t{i}" for i in range(20)], "label": [i % 2 for i in range(20)]}
    fake = datasets.DatasetDict({s: datasets.Dataset.from_dict(rows, features=features) for s in ("train", "test")})
    monkeypatch.setattr(loading, "_hf_is_cached", lambda name: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config=None: fake)
    splits = load_splits("hf:toy")
    assert splits.label_names == ["neg", "pos"] and len(splits.test) == 20
    assert splits.test.ids[0] == "hf:test:1" and splits.record["test"]["path"] == "hf:toy:test"


# --- real data (read from ../shared/data) --------------------------------------------------------------------------


def test_snips_builtin_real_split() -> None:
    folder = SHARED_DATA / "snips_builtin"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    splits = load_splits(folder, seed=0)
    assert len(splits.train) + len(splits.validation) + len(splits.test) == 328
    assert len(splits.test) == math.ceil(0.1 * 328) and len(splits.validation) == math.ceil(0.2 * 328)
    assert splits.num_labels == 10
    for part in (splits.train, splits.validation, splits.test):
        assert set(part.labels) == set(splits.label_names)
    counts = Counter(splits.train.labels + splits.validation.labels + splits.test.labels)
    for label, count in Counter(splits.test.labels).items():
        assert abs(count - 0.1 * counts[label]) <= 1  # stratified
