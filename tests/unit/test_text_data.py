"""The text data layer: batches (ids + mask), truncation, the length-bucketed sampler, and the sources
``movie_reviews``, ``text_csv`` and ``text_jsonl`` with their errors (CPU, offline, tiny files)."""

from __future__ import annotations

import csv
import io
import json
import sys
import tarfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ftcli.data.datamodule import EpochShuffle
from ftcli.data.images.store import in_order
from ftcli.data.sources import build_datamodule
from ftcli.data.sources import movie_reviews as reviews
from ftcli.data.text.batches import batch_of_texts, collate, encode_texts
from ftcli.data.text.buckets import LengthBuckets
from ftcli.data.text.spec import TextSpec, text_spec
from ftcli.data.text.tokenized import TokenizedTexts
from ftcli.data.text.tokenizer import load_tokenizer, pad_id
from ftcli.errors import ConfigError, DataError

from helpers.installed import require_package
from helpers.text_models import minilm_folder

require_package("transformers")

MINILM = str(minilm_folder())
CLS, SEP = 101, 102  # MiniLM's (BERT's) special tokens


def make(cfg: dict, seed: int = 0, max_length: int = 32):
    return build_datamodule({"batch_size": 4, **cfg}, TextSpec(MINILM, max_length), seed)


def write_csv(path: Path, rows: list[tuple], header: tuple = ("text", "label")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def reviews_rows(n: int = 10, labels: tuple = ("bad", "good")) -> list[tuple[str, str]]:
    """``n`` short texts per label, of varied lengths."""
    return [
        (f"{label} film " + "very " * (i % 5) + f"number {i}", label) for label in labels for i in range(n)
    ]


def texts_of(dm, split: str) -> list[str]:
    return list(dm.splits[split].texts)


# ---------------------------------------------------------------------------- spec, tokenizer, batches


def test_text_spec_round_trips_as_plain_data() -> None:
    spec = TextSpec(MINILM, 64)
    assert spec.to_dict() == {"kind": "tokens", "tokenizer": MINILM, "max_length": 64}
    assert TextSpec.from_dict(spec.to_dict()) == spec
    assert text_spec({"max_length": 16}, MINILM) == TextSpec(MINILM, 16)
    with pytest.raises(ConfigError, match=r"data\.max_length"):
        text_spec({"max_length": "long"}, MINILM)


def test_collate_pads_right_with_the_pad_id_and_masks_the_padding() -> None:
    x, y = collate([([5, 6, 7], 1), ([8], 0), ([9, 10], 1)], pad=3)

    assert x.dtype == torch.long and x.shape == (3, 2, 3)  # L = the longest in this batch
    assert x[:, 0].tolist() == [[5, 6, 7], [8, 3, 3], [9, 10, 3]]
    assert x[:, 1].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert y.dtype == torch.long and y.tolist() == [1, 0, 1]


def test_pad_id_falls_back_to_eos_then_zero() -> None:
    assert pad_id(SimpleNamespace(pad_token_id=7, eos_token_id=9)) == 7
    assert pad_id(SimpleNamespace(pad_token_id=None, eos_token_id=9)) == 9  # GPT-2
    assert pad_id(SimpleNamespace()) == 0
    assert pad_id(load_tokenizer(MINILM)) == 0


def test_load_tokenizer_is_cached_and_names_a_missing_folder(tmp_path: Path) -> None:
    assert load_tokenizer(MINILM) is load_tokenizer(MINILM)
    with pytest.raises(DataError, match="nowhere"):
        load_tokenizer(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        load_tokenizer(str(tmp_path / "empty"))


def test_encode_adds_special_tokens_and_counts_truncated_texts() -> None:
    tokenizer = load_tokenizer(MINILM)
    ids, truncated = encode_texts(tokenizer, ["a fine film", "word " * 50, "ok"], max_length=8)

    assert truncated == 1
    assert [len(row) for row in ids] == [5, 8, 3]
    assert all(row[0] == CLS and row[-1] == SEP for row in ids)  # kept after truncation too
    x = batch_of_texts(tokenizer, ["a fine film", "ok"], max_length=8)
    assert x.shape == (2, 2, 5) and x[1, 1].tolist() == [1, 1, 1, 0, 0]


def test_a_max_length_without_room_for_a_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"data\.max_length=2 .*2 special"):
        encode_texts(load_tokenizer(MINILM), ["hello"], max_length=2)


def test_fingerprint_follows_ids_labels_and_max_length() -> None:
    def fp(ids=((1, 2), (3,)), labels=(0, 1), max_length=8) -> str:
        return TokenizedTexts(ids, labels, 0, MINILM, max_length).fingerprint()

    assert fp() == fp()
    assert (
        len({fp(), fp(ids=((1, 2), (4,))), fp(labels=(1, 1)), fp(max_length=9), fp(ids=((1,), (2, 3)))}) == 5
    )


# ---------------------------------------------------------------------------- the bucketed sampler


def spread(order: list[int], lengths: list[int], batch_size: int) -> float:
    """The mean (longest - shortest) length within consecutive batches of ``order``."""
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)


def test_length_buckets_is_a_seeded_permutation_of_similar_length_batches() -> None:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 120, (1003,), generator=generator).tolist()
    epoch = {"now": 0}

    def buckets(seed: int = 1) -> LengthBuckets:
        return LengthBuckets(lengths, seed, lambda: epoch["now"], lengths, batch_size=8)

    first = list(buckets())
    assert isinstance(buckets(), EpochShuffle)  # DDP swaps it like any RandomSampler
    assert sorted(first) == list(range(len(lengths)))
    assert list(buckets()) == first  # the same (seed, epoch): the same order, so a resume is exact
    assert list(buckets(seed=2)) != first
    epoch["now"] = 1
    second = list(buckets())
    assert second != first and sorted(second) == sorted(first)
    plain = list(EpochShuffle(lengths, 1, lambda: 1))
    assert spread(second, lengths, 8) < 0.25 * spread(plain, lengths, 8)
    # every batch the DataLoader cuts (8 consecutive indices) is a slice of one length-sorted pool: the
    # short batch (1003 % 8 = 3) comes last, so it shifts no other batch across two buckets
    batches = [first[i : i + 8] for i in range(0, len(first), 8)]
    assert len(batches[-1]) == 3
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in batches)


def test_training_batches_are_bucketed_and_evaluation_stays_in_order(tmp_path: Path) -> None:
    rows = [(" ".join(["word"] * (1 + (i * 7) % 40)), "ab"[i % 2]) for i in range(200)]
    dm = make({"name": "text_csv", "root": str(write_csv(tmp_path / "t.csv", rows))}, max_length=64)
    dm.setup()

    def padding(loader) -> float:
        masks = [x[:, 1] for x, _ in loader]
        return sum(float((m == 0).sum()) for m in masks) / sum(m.numel() for m in masks)

    train = dm.train_dataloader()
    x, y = next(iter(train))
    assert x.dtype == torch.long and x.shape[:2] == (4, 2) and y.dtype == torch.long
    plain = torch.utils.data.DataLoader(
        dm.dataset("train"), batch_size=4, sampler=EpochShuffle(dm.dataset("train"), 0, lambda: 0),
        collate_fn=dm.dataset("train").collate,
    )  # fmt: skip
    assert padding(train) < 0.5 * padding(plain)
    val = dm.dataset("val")
    assert torch.cat([y for _, y in dm.val_dataloader()]).tolist() == val.labels
    assert torch.cat([y for _, y in in_order(val, 3)]).tolist() == val.labels  # the feature cache's reader


# ---------------------------------------------------------------------------- movie_reviews


def write_snippets(path: Path, scored: list[tuple[float, str]]) -> Path:
    path.write_text("".join(f"{i}\t{s}\t{t}\r\n" for i, (s, t) in enumerate(scored, 1)), encoding="utf-8")
    return path


def fake_sdist(folder: Path, snippets: bytes) -> Path:
    """An archive laid out like vaderSentiment-3.3.2.tar.gz around ``snippets``."""

    def tar_of(name: str, data: bytes) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    path = folder / reviews.SDIST
    path.write_bytes(tar_of(reviews.INNER_ARCHIVE, tar_of(reviews.INNER_MEMBER, snippets)))
    return path


SCORED = [(2.5, "A gem."), (-1.2, "Dull."), (0.0, "A film."), (0.4, "Fine, mostly."), (-3.1, "Awful.")] * 6


def test_movie_reviews_drops_score_zero_and_reads_the_text_or_the_nested_archives(tmp_path: Path) -> None:
    (tmp_path / "txt").mkdir()
    (tmp_path / "sdist").mkdir()
    text_file = write_snippets(tmp_path / "txt" / reviews.FILE, SCORED)
    fake_sdist(tmp_path / "sdist", text_file.read_bytes())

    for folder in ("txt", "sdist"):
        dm = make(
            {"name": "movie_reviews", "root": str(tmp_path / folder), "val_fraction": 0.2}, max_length=16
        )
        assert dm.class_names == ["negative", "positive"]
        assert sum(dm.split_sizes().values()) == 24  # the six "A film." (score 0) are left out
        every = [t for s in ("train", "val", "test") for t in texts_of(dm, s)]
        assert "A film." not in every and Counter(every)["Dull."] == 6
        label = dict(zip(dm.splits["train"].texts, dm.splits["train"].labels, strict=True))
        assert label["A gem."] == label["Fine, mostly."] == 1 and label["Awful."] == 0


def test_movie_reviews_search_order_and_the_missing_file_error(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "prefix" / "share" / "ftcli").mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.setenv("FTCLI_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(DataError) as error:
        reviews.find_source(None)
    message = str(error.value) + str(error.value.hint)
    assert str(tmp_path / "env") in message and str(tmp_path / "prefix" / "share" / "ftcli") in message
    assert "make install" in message
    assert "pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR" in message
    assert "data.root=DIR" in message

    in_prefix = write_snippets(tmp_path / "prefix" / "share" / "ftcli" / reviews.FILE, SCORED)
    assert reviews.find_source(None) == in_prefix
    in_env = fake_sdist(tmp_path / "env", b"")
    assert reviews.find_source(None) == in_env  # $FTCLI_DATA_DIR before the environment
    assert reviews.find_source(str(tmp_path / "prefix" / "share" / "ftcli")) == in_prefix  # data.root first
    with pytest.raises(DataError, match=r"data\.root=.*nowhere does not exist"):
        reviews.find_source(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match=r"not in data\.root"):
        reviews.find_source(str(tmp_path))


def test_a_damaged_archive_is_a_data_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / reviews.SDIST).write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match=r"vaderSentiment-3\.3\.2\.tar\.gz is not a readable"):
        make({"name": "movie_reviews", "root": str(tmp_path)})


@pytest.fixture(scope="module")
def vader_sdist() -> Path:
    """The real file (``make install`` downloads it into the environment), else the test is skipped."""
    try:
        return reviews.find_source(None)
    except DataError as error:
        pytest.skip(f"the vaderSentiment 3.3.2 sdist is not installed: {error.hint}")


def test_movie_reviews_has_10568_polar_sentences(vader_sdist: Path) -> None:
    snippets = reviews.read_snippets(vader_sdist)
    texts, labels = reviews.polar_sentences(snippets)

    assert len(snippets) == 10_605 and sum(score == 0 for score, _ in snippets) == 37
    assert len(texts) == 10_568 and Counter(labels) == {1: 5_242, 0: 5_326}
    assert "clichés" in " ".join(texts)  # decoded as the UTF-8 it is


def test_movie_reviews_splits_are_stratified_seeded_and_per_class_thins_train(vader_sdist: Path) -> None:
    cfg = {
        "name": "movie_reviews",
        "root": str(vader_sdist.parent),
        "val_fraction": 0.1,
        "test_fraction": 0.2,
    }
    dm = make(cfg, seed=3)
    sizes = dm.split_sizes()
    assert sum(sizes.values()) == 10_568 and dm.has_test
    assert sizes["val"] == round(0.1 * 5_242) + round(0.1 * 5_326)
    assert sizes["test"] == round(0.2 * 5_242) + round(0.2 * 5_326)
    for split in ("train", "val", "test"):
        positive = sum(dm.splits[split].labels) / len(dm.splits[split])
        assert abs(positive - 5_242 / 10_568) < 0.002, split
    assert texts_of(make(cfg, seed=3), "val") == texts_of(dm, "val")
    assert texts_of(make(cfg, seed=4), "val") != texts_of(dm, "val")

    few = make({**cfg, "per_class": 5}, seed=3)
    assert Counter(few.splits["train"].labels) == {0: 5, 1: 5}
    assert set(texts_of(few, "train")) <= set(texts_of(dm, "train"))
    assert texts_of(few, "val") == texts_of(dm, "val") and texts_of(few, "test") == texts_of(dm, "test")
    few.setup()  # max_length=32 here: the longest sentence has 79 tokens
    at_limit = sum(n == 32 for split in ("train", "val", "test") for n in few.dataset(split).lengths)
    assert 0 < few.describe()["truncated"] <= at_limit and few.describe()["max_length"] == 32
    roomy = make({**cfg, "per_class": 5}, seed=3, max_length=128)
    roomy.setup()
    assert roomy.describe()["truncated"] == 0


# ---------------------------------------------------------------------------- text_csv, text_jsonl


def test_one_csv_file_is_split_stratified_and_seeded(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", reviews_rows(10))
    cfg = {"name": "text_csv", "root": str(path), "val_fraction": 0.2, "test_fraction": 0.2}
    dm = make(cfg, seed=1)

    assert dm.class_names == ["bad", "good"] and dm.has_test
    assert dm.split_sizes() == {"train": 12, "val": 4, "test": 4}
    assert Counter(dm.splits["val"].labels) == {0: 2, 1: 2} == Counter(dm.splits["test"].labels)
    assert texts_of(make(cfg, seed=1), "val") == texts_of(dm, "val")
    assert texts_of(make(cfg, seed=2), "val") != texts_of(dm, "val")
    assert Counter(make({**cfg, "per_class": 2}).splits["train"].labels) == {0: 2, 1: 2}
    with pytest.raises(DataError, match="keeps no texts"):
        make({**cfg, "per_class": 0})


def test_a_folder_with_train_only_carves_val_and_uses_its_own_val_and_test(tmp_path: Path) -> None:
    write_csv(tmp_path / "a" / "train.csv", reviews_rows(10))
    dm = make({"name": "text_csv", "root": str(tmp_path / "a")})
    assert dm.split_sizes() == {"train": 16, "val": 4, "test": 0} and not dm.has_test

    write_jsonl(tmp_path / "b" / "train.jsonl", [{"text": t, "label": lab} for t, lab in reviews_rows(4)])
    write_jsonl(tmp_path / "b" / "val.jsonl", [{"text": "good one", "label": "good"}])
    write_jsonl(tmp_path / "b" / "test.jsonl", [{"text": "bad one", "label": "bad"}])
    dm = make({"name": "text_jsonl", "root": str(tmp_path / "b")})
    assert dm.split_sizes() == {"train": 8, "val": 1, "test": 1} and dm.has_test
    assert texts_of(dm, "val") == ["good one"] and dm.splits["test"].labels == [0]
    dm.setup()
    assert dm.describe()["bad_texts"] == 0 and dm.describe()["truncated"] == 0


def test_integer_labels_sort_numerically_and_strings_alphabetically(tmp_path: Path) -> None:
    rows = [(f"text {i}", str(label)) for i, label in enumerate([10, 2, 1] * 3)]
    dm = make({"name": "text_csv", "root": str(write_csv(tmp_path / "n.csv", rows)), "val_fraction": 0.3})
    assert dm.class_names == ["1", "2", "10"]
    label_of = dict(zip(dm.splits["train"].texts, dm.splits["train"].labels, strict=True))
    assert all(dm.class_names[label_of[t]] == lab for t, lab in rows if t in label_of)

    records = [{"text": f"t{i}", "label": label} for i, label in enumerate([3, "3", 11, "11", 3, 11])]
    dm = make({"name": "text_jsonl", "root": str(write_jsonl(tmp_path / "n.jsonl", records))}, seed=0)
    assert dm.class_names == ["3", "11"]  # 3 and "3" are one class

    words = [(f"text {i}", w) for i, w in enumerate(["pos", "neg", "Neutral"] * 3)]
    dm = make({"name": "text_csv", "root": str(write_csv(tmp_path / "w.csv", words)), "val_fraction": 0.3})
    assert dm.class_names == ["Neutral", "neg", "pos"]


def test_other_column_names_and_truncation_are_counted(tmp_path: Path) -> None:
    rows = [("a " * 40, "x"), ("short", "y")] * 3
    path = write_csv(tmp_path / "c.csv", rows, header=("body", "stars"))
    cfg = {"name": "text_csv", "root": str(path), "text_column": "body", "label_column": "stars"}
    dm = make({**cfg, "val_fraction": 0.34}, max_length=10)
    assert dm.describe()["truncated"] is None  # not tokenized yet
    dm.setup()
    assert dm.describe()["truncated"] == 3 and dm.describe()["max_length"] == 10
    assert max(max(dm.dataset(s).lengths) for s in ("train", "val")) == 10


def error_of(cfg: dict) -> DataError:
    with pytest.raises(DataError) as error:
        make(cfg)
    return error.value


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_a_missing_column_lists_the_columns_found(tmp_path: Path, kind: str) -> None:
    if kind == "csv":
        path = write_csv(tmp_path / "x.csv", [("hi", "a")], header=("sentence", "label"))
    else:
        path = write_jsonl(tmp_path / "x.jsonl", [{"sentence": "hi", "label": "a"}])
    error = error_of({"name": f"text_{kind}", "root": str(path)})
    assert "'text'" in str(error) and "'sentence', 'label'" in str(error) and str(path) in str(error)
    assert "data.text_column" in error.hint


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_an_empty_text_names_file_and_line(tmp_path: Path, kind: str) -> None:
    rows = [("fine", "a"), ("ok", "b"), ("   ", "a")]
    if kind == "csv":
        path, line = write_csv(tmp_path / "x.csv", rows), 4
    else:
        path, line = write_jsonl(tmp_path / "x.jsonl", [{"text": t, "label": lab} for t, lab in rows]), 3
    error = error_of({"name": f"text_{kind}", "root": str(path)})
    assert error.message == f"{path} line {line} has an empty text."


def test_csv_line_numbers_count_multiline_texts(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [("two\nlines", "a"), ("ok", "b"), ("fine", "")])
    assert error_of({"name": "text_csv", "root": str(path)}).message == f"{path} line 5 has an empty label."


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"text,label\ncaf" + "é".encode("latin-1") + b",a\n")
    error = error_of({"name": "text_csv", "root": str(path)})
    assert str(error).startswith(f"{path} is not UTF-8 text (byte 14 is not")
    assert "UTF-8" in error.hint


def test_one_class_only_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [("a", "good"), ("b", "good"), ("c", "good")])
    error = error_of({"name": "text_csv", "root": str(path)})
    assert "1 label(s) ['good']" in str(error) and "at least 2" in str(error)


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_label_train_lacks_is_named(tmp_path: Path, split: str) -> None:
    write_csv(tmp_path / "train.csv", reviews_rows(3))
    write_csv(tmp_path / f"{split}.csv", [("fine", "good"), ("meh", "so-so")])
    error = error_of({"name": "text_csv", "root": str(tmp_path)})
    assert (
        f"{tmp_path / f'{split}.csv'} line 3: label 'so-so' is in the {split} split but not in train"
        in str(error)
    )


def test_an_unknown_root_or_folder_without_train_is_named(tmp_path: Path) -> None:
    error = error_of({"name": "text_jsonl", "root": str(tmp_path / "missing")})
    assert error.message == f"data.root={tmp_path / 'missing'} does not exist."
    assert "train.jsonl" in error.hint and "data.root=FILE.jsonl" in error.hint

    write_csv(tmp_path / "train.csv", reviews_rows(3))
    error = error_of({"name": "text_jsonl", "root": str(tmp_path)})
    assert "holds no train.jsonl (found: train.csv)" in str(error)
    error = error_of({"name": "text_jsonl", "root": str(tmp_path / "train.csv")})
    assert "is a CSV file" in str(error) and error.hint.startswith("Use data=text_csv")
    with pytest.raises(ConfigError, match=r"data\.root is required for data\.name=text_csv"):
        make({"name": "text_csv", "root": None})


def test_an_empty_file_or_a_header_alone_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    error = error_of({"name": "text_jsonl", "root": str(tmp_path / "empty.jsonl")})
    assert error.message == f"{tmp_path / 'empty.jsonl'} is empty."
    path = write_csv(tmp_path / "header.csv", [])
    assert error_of({"name": "text_csv", "root": str(path)}).message == f"{path} has a header but no rows."


def test_jsonl_lines_that_are_not_objects_or_labels_that_are_not_whole_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a", "label": 1}\n{"text": "b", "label": \n')
    assert "line 2 is not JSON" in str(error_of({"name": "text_jsonl", "root": str(path)}))
    path.write_text('{"text": "a", "label": 1}\n\n["b", 2]\n')
    assert error_of({"name": "text_jsonl", "root": str(path)}).message.endswith(
        "line 3 is a JSON list, not an object."
    )
    write_jsonl(path, [{"text": "a", "label": 1}, {"text": "b", "label": 1.5}])
    error = error_of({"name": "text_jsonl", "root": str(path)})
    assert error.message == f"{path} line 2: the label is 1.5, neither a string nor a whole number."


def test_a_class_too_small_to_split_speaks_of_texts(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", [*reviews_rows(5, ("a",)), ("lonely", "b")])
    error = error_of({"name": "text_csv", "root": str(path)})
    assert "Class 'b'" in str(error) and "has 1 text(s)" in str(error) and "texts" in error.hint


def test_an_image_spec_is_refused_by_a_text_source(tmp_path: Path) -> None:
    from ftcli.data.images.transforms import TransformSpec

    path = write_csv(tmp_path / "x.csv", reviews_rows(3))
    with pytest.raises(ConfigError, match="holds texts"):
        build_datamodule(
            {"name": "text_csv", "root": str(path)}, TransformSpec(16, 12, (0.5,) * 3, (0.5,) * 3), 0
        )
