"""The leak check (ftcli/data/leakage.py): copies across splits and repeats within one, by file bytes,
decoded pixels or normalised text, and what data.on_leak does with them (digits and texts here; image
folders through the CLI: tests/cli/test_leakage_cli.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from ftcli.config.schema import check_value
from ftcli.data import leakage
from ftcli.data.images.transforms import TransformSpec
from ftcli.data.sources import build_datamodule
from ftcli.data.sources.digits import DigitsDataModule
from ftcli.errors import ConfigError, DataError

SPEC = TransformSpec(resize=8, crop=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def content(*items: str) -> leakage.SplitContent:
    return leakage.SplitContent([item.encode() for item in items], lambda i, items=items: f"{items[i]}#{i}")


def test_copies_of_earlier_splits_and_repeats_within_a_split_are_counted_apart() -> None:
    report = leakage.find(
        {
            "train": content("a", "b", "b", "c"),
            "val": content("a", "d", "d", "e"),
            "test": content("b", "e", "f"),
        },
        "bytes",
        "images",
    )
    assert report.within == {"train": 1, "val": 1, "test": 0}
    assert report.across == {"val in train": 1, "test in train": 1, "test in val": 1}
    assert report.leaked == {"val": [0], "test": [0, 1]} and report.leaked_count == 3
    assert report.examples == ["a#0 = a#0", "b#0 = b#1", "e#1 = e#3"]
    assert report.checked == 11
    clean = leakage.find({"train": content("a"), "val": content("b")}, "bytes", "images")
    assert clean.leaked_count == clean.repeated_count == 0 and "no exact copies" in clean.line()


def test_file_digests_match_exact_copies_only_reading_what_they_must(tmp_path: Path) -> None:
    head = bytes(range(256)) * 16  # 4 KiB
    contents = {
        "unique.bin": b"x" * 10,  # a size of its own: never opened
        "small1.bin": b"abc",
        "small2.bin": b"abc",  # an exact copy under 4 KiB
        "big1.bin": head + b"tail-1",
        "big2.bin": head + b"tail-2",  # same size and first 4 KiB: read whole, and different
        "big3.bin": head + b"tail-1",  # an exact copy of big1
        "empty1.bin": b"",
        "empty2.bin": b"",  # empty files are no images: left to the unreadable-image check
    }
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(tmp_path / name) for name in contents] + [str(tmp_path / "gone.bin")]
    found = dict(zip([*contents, "gone.bin"], leakage.file_digests(paths, threads=2), strict=True))
    assert found["small1.bin"] == found["small2.bin"] and found["big1.bin"] == found["big3.bin"]
    assert len(set(found.values())) == len(found) - 2


def test_texts_compare_with_unicode_form_case_and_spacing_normalised() -> None:
    same = ["Caf\u00e9  au lait", "CAFE\u0301 au\tlait ", "café au lait"]
    assert len(set(leakage.text_digests(same))) == 1
    assert leakage.text_digests(["café au lait"]) != leakage.text_digests(["cafe au lait"])


def test_pixel_digests_tell_shapes_apart() -> None:
    flat = np.zeros((1, 4, 4), dtype=np.uint8)
    assert leakage.array_digests(flat) != leakage.array_digests(flat.reshape(1, 2, 8))
    assert leakage.array_digests(np.stack([flat[0], flat[0]])) == leakage.array_digests(flat) * 2


class CopiedDigits(DigitsDataModule):
    """scikit-learn's digits with 40 of them stored twice: the stratified split scatters the copies."""

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels = super().load()
        return np.concatenate([images, images[:40]]), np.concatenate([labels, labels[:40]])


def pixels(dm: DigitsDataModule, split: str) -> list[bytes]:
    return [row.tobytes() for row in dm.images[dm.indices[split]]]


def test_digits_hold_no_copies_and_copied_pixels_are_found_and_dropped_from_val_and_test_only() -> None:
    assert build_datamodule({"name": "digits"}, SPEC, 0).check_leaks().leaked_count == 0

    warned = CopiedDigits({"name": "digits", "test_fraction": 0.2}, SPEC, 0)
    report = warned.check_leaks()
    train, val, test = (pixels(warned, split) for split in ("train", "val", "test"))
    expected = sum(v in train for v in val) + sum(t in train or t in val for t in test)
    assert report.basis == "pixels" and 0 < report.leaked_count == expected
    assert report.repeated_count == sum(len(s) - len(set(s)) for s in (train, val, test))
    assert report.examples[0].startswith("digits image #")

    dropped = CopiedDigits({"name": "digits", "test_fraction": 0.2, "on_leak": "drop"}, SPEC, 0)
    before = dropped.split_sizes()
    assert dropped.check_leaks().dropped == {s: len(i) for s, i in report.leaked.items()}
    after = dropped.split_sizes()
    assert after["train"] == before["train"]
    assert after["val"] + after["test"] == before["val"] + before["test"] - expected
    train, val, test = (pixels(dropped, split) for split in ("train", "val", "test"))
    assert not set(val) & set(train) and not set(test) & (set(train) | set(val))
    assert len(dropped.dataset("val")) == after["val"]  # the datasets are made from what was kept

    with pytest.raises(DataError, match=r"exact copies .*data\.on_leak=error") as err:
        CopiedDigits({"name": "digits", "test_fraction": 0.2, "on_leak": "error"}, SPEC, 0).check_leaks()
    assert "digits image #" in str(err.value) and "data.on_leak=drop" in str(err.value)


def test_texts_copied_into_val_are_found_whatever_their_case_and_spacing(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from ftcli.data.text.spec import TextSpec

    from helpers.text_models import minilm_folder

    rows = {
        "train": [(f"review number {i}", "good" if i % 2 else "bad") for i in range(8)],
        "val": [("REVIEW  number 1", "good"), ("another one", "bad"), ("new", "good")],
    }
    for split, split_rows in rows.items():
        with open(tmp_path / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("text", "label"), *split_rows])
    cfg = {"name": "text_csv", "root": str(tmp_path), "on_leak": "drop"}
    dm = build_datamodule(cfg, TextSpec(str(minilm_folder()), 16), 0)
    report = dm.check_leaks()
    assert report.basis == "normalised text" and report.across == {"val in train": 1}
    assert report.examples == ["'REVIEW number 1' = 'review number 1'"]
    assert dm.splits["val"].texts == ["another one", "new"]


def test_on_leak_takes_warn_error_or_drop() -> None:
    with pytest.raises(
        ConfigError, match=r"data.on_leak='ignore' is not valid: it must be one of warn, error, drop"
    ):
        check_value("ignore", "data.on_leak")
