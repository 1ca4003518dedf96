"""``data=hf_datasets``: texts read by ``datasets.load_dataset`` from tiny local files (CSV, JSON lines,
parquet with a ClassLabel, a folder, a fabricated Hub cache), the split mapping, carved splits, and the
bad inputs, each an exit-2 error naming the key (CPU, offline, a few seconds)."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import pytest

from helpers.installed import require_package

datasets = pytest.importorskip("datasets")
require_package("transformers")

from ftcli.data.sources import _hf_datasets_loading as hf_loading  # noqa: E402
from ftcli.data.sources import build_datamodule  # noqa: E402
from ftcli.data.sources import hf_datasets as hf  # noqa: E402
from ftcli.data.text.spec import TextSpec  # noqa: E402
from ftcli.errors import ConfigError, DataError  # noqa: E402

from helpers.text_models import minilm_folder  # noqa: E402


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A datasets cache of the test's own (nothing written to ~/.cache)."""
    return tmp_path / "hf-cache"


def write_csv(path: Path, rows: list[tuple], header: tuple = ("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def rows(n: int = 5, labels: tuple = ("bad", "good")) -> list[tuple[str, str]]:
    return [(f"a {label} film number {i}", label) for label in labels for i in range(n)]


def load(cache: Path, seed: int = 0, **data) -> hf.HfDatasetsDataModule:
    cfg = {"name": "hf_datasets", "cache_dir": str(cache), "batch_size": 4, **data}
    dm = build_datamodule(cfg, TextSpec(str(minilm_folder()), 32), seed)
    assert isinstance(dm, hf.HfDatasetsDataModule)
    return dm


def sizes(dm) -> dict[str, int]:
    return {split: len(raw) for split, raw in dm.splits.items()}


def test_one_csv_file_is_carved_stratified_and_seeded(tmp_path: Path, cache: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", rows(5))
    dm = load(cache, dataset="csv", files=str(path), val_fraction=0.2, test_fraction=0.2)

    assert dm.class_names == ["bad", "good"]
    assert sizes(dm) == {"train": 6, "val": 2, "test": 2}  # one of each class in val and in test
    assert sorted(dm.splits["val"].labels) == [0, 1] and dm.root == path
    again = load(cache, dataset="csv", files=str(path), val_fraction=0.2, test_fraction=0.2)
    assert again.splits["val"].texts == dm.splits["val"].texts  # the same seed: the same split
    assert sizes(load(cache, seed=1, dataset="csv", files=str(path))) == {"train": 8, "val": 2}  # 0.2 of 10


def test_json_lines_mapped_splits_and_numeric_labels(tmp_path: Path, cache: Path) -> None:
    def jsonl(name: str, items: list[tuple[str, int]]) -> str:
        path = tmp_path / name
        path.write_text("".join(json.dumps({"review": t, "stars": s}) + "\n" for t, s in items), "utf-8")
        return str(path)

    train = [(f"text {i}", stars) for i in range(4) for stars in (10, 2)]
    files = {"train": jsonl("tr.jsonl", train), "dev": jsonl("dev.jsonl", [("ok", 2), ("fine", 10)])}
    dm = load(
        cache,
        dataset="json",
        files=files,
        splits={"val": "dev", "test": None},
        text_column="review",
        label_column="stars",
    )

    assert dm.class_names == ["2", "10"]  # whole numbers sort as numbers, as text_csv's do
    assert sizes(dm) == {"train": 8, "val": 2} and dm.chosen == {"train": "train", "val": "dev"}
    assert dm.splits["val"].texts == ["ok", "fine"] and dm.splits["val"].labels == [0, 1]


def test_a_class_label_gives_the_class_order_and_a_folder_its_splits(tmp_path: Path, cache: Path) -> None:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["pos", "neg", "unused"])}
    )
    folder = tmp_path / "sst"
    folder.mkdir()
    for split, n in (("train", 4), ("test", 1)):
        data = {"text": [f"{split} {i} {k}" for i in range(n) for k in range(2)], "label": [0, 1] * n}
        datasets.Dataset.from_dict(data, features=features).to_parquet(str(folder / f"{split}.parquet"))

    dm = load(cache, dataset=str(folder), val_fraction=0.25)

    assert dm.class_names == ["pos", "neg"]  # the ClassLabel's order, not sorted; unused left out
    assert sizes(dm) == {"train": 6, "val": 2, "test": 2} and dm.root == folder


def test_a_hub_name_is_read_from_the_cache_first(tmp_path: Path, cache: Path, monkeypatch) -> None:
    """A dataset the cache holds loads with no network (the cache layout of datasets 4 and 5)."""
    from datasets.data_files import DataFilesDict
    from datasets.packaged_modules.csv.csv import Csv

    path = write_csv(tmp_path / "tiny.csv", rows(3))
    builder = Csv(
        data_files=DataFilesDict.from_patterns({"train": [str(path)]}),
        cache_dir=str(tmp_path / "build"),
        dataset_name="tiny",
    )
    builder.download_and_prepare()
    shutil.copytree(builder.cache_dir, cache / "someone___tiny" / "default" / "0.0.0" / "0123abcd")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")

    dm = load(cache, dataset="someone/tiny", val_fraction=0.34)

    assert dm.class_names == ["bad", "good"] and sizes(dm) == {"train": 4, "val": 2} and dm.root is None
    with pytest.raises(
        ConfigError, match=r"data\.config=other: .*Available configs in the cache: \['default'\]"
    ):
        load(cache, dataset="someone/tiny", config="other")


@pytest.mark.parametrize("variable", ["HF_DATASETS_OFFLINE", "FTCLI_OFFLINE"])
def test_an_uncached_hub_name_offline_fails_at_once_naming_the_cache(
    cache: Path, monkeypatch, variable
) -> None:
    monkeypatch.setenv(variable, "1")
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"data\.dataset=imdb is not in the datasets cache") as caught:
        load(cache, dataset="imdb")
    assert time.perf_counter() - start < 5
    assert (
        f"Cache folder: {cache}" in caught.value.hint and "data.dataset=csv data.files=" in caught.value.hint
    )


def test_bad_options_are_config_errors_naming_the_key(tmp_path: Path, cache: Path) -> None:
    path = str(write_csv(tmp_path / "r.csv", rows(3)))
    with pytest.raises(ConfigError, match=r"data\.dataset is required"):
        load(cache, dataset=None)
    with pytest.raises(ConfigError, match=r"data\.files is required for data\.dataset=csv"):
        load(cache, dataset="csv")
    with pytest.raises(ConfigError, match=r"is a file.*\n.*data\.dataset=csv data\.files="):
        load(cache, dataset=path)
    with pytest.raises(DataError, match=r"data\.dataset=.*nowhere does not exist"):
        load(cache, dataset=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"data\.files=.*missing\.csv does not exist"):
        load(cache, dataset="csv", files=str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match=r"matches no file"):
        load(cache, dataset="csv", files=str(tmp_path / "*.tsv"))
    with pytest.raises(ConfigError, match=r"data\.splits has the key\(s\) dev"):
        load(cache, dataset="csv", files=path, splits={"dev": "x"})
    with pytest.raises(ConfigError, match=r"data\.files names the split\(s\) val, which data\.splits"):
        load(cache, dataset="csv", files={"train": path, "val": path})


def test_bad_data_is_a_data_error_listing_what_exists(tmp_path: Path, cache: Path) -> None:
    path = str(write_csv(tmp_path / "r.csv", rows(3)))
    with pytest.raises(
        DataError, match=r"data\.splits\.test=holdout: .*no split 'holdout' \(its splits: train\)"
    ):
        load(cache, dataset="csv", files=path, splits={"test": "holdout"})
    with pytest.raises(
        DataError, match=r"no column 'body' \(data\.text_column; columns found: text, label\)"
    ):
        load(cache, dataset="csv", files=path, text_column="body")
    with pytest.raises(DataError, match=r"has 1 label\(s\) \['good'\]"):
        load(cache, dataset="csv", files=str(write_csv(tmp_path / "one.csv", rows(3, ("good",)))))
    empty = write_csv(tmp_path / "empty.csv", [*rows(3), ("   ", "good")])
    with pytest.raises(DataError, match=r"split 'train' row 6 \(counting from 0\) has an empty text"):
        load(cache, dataset="csv", files=str(empty))
    test = str(write_csv(tmp_path / "t.csv", [("a new one", "meh")]))
    with pytest.raises(DataError, match=r"label 'meh' is in the test split but not in train"):
        load(cache, dataset="csv", files={"train": path, "test": test})


def test_unlabelled_rows_of_a_class_label_split_name_the_fix(tmp_path: Path, cache: Path) -> None:
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b"])}
    )
    for split, labels in (("train", [0, 1] * 3), ("test", [-1, -1])):
        data = {"text": [f"{split} {i}" for i in range(len(labels))], "label": labels}
        datasets.Dataset.from_dict(data, features=features).to_parquet(str(tmp_path / f"{split}.parquet"))
    files = {split: str(tmp_path / f"{split}.parquet") for split in ("train", "test")}
    with pytest.raises(DataError, match=r"split 'test' row 0 .*has no label \(-1") as caught:
        load(cache, dataset="parquet", files=files)
    assert "data.splits.test=null" in caught.value.hint


def test_a_missing_library_is_a_config_error_naming_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(ConfigError, match="needs the datasets library") as caught:
        hf_loading.datasets_library()
    assert "pip install 'ftcli[text]'" in caught.value.hint


def test_the_tokenizer_runs_on_the_loaded_texts(tmp_path: Path, cache: Path) -> None:
    dm = load(cache, dataset="csv", files=str(write_csv(tmp_path / "r.csv", rows(4))))
    dm.setup("fit")
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape[:2] == (2, 2) and sorted(y.tolist()) == [0, 1] and dm.truncated == 0
