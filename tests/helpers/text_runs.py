"""One tiny trained text run shared by the text end-to-end tests: trained once per test session.

As :mod:`helpers.shared_runs` does for images: the run is built once for the session (once for all
pytest-xdist workers, :func:`~helpers.shared_runs.shared_folder`), and tests only read it or write new
files beside it. The model is the tiny random-init Llama of :mod:`helpers.text_models`, written into
the shared folder itself (the checkpoint names its folder, so it must outlive every worker), trained
one epoch on 40 short reviews; ``data.max_length=24`` keeps texts short enough that a long one is cut.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.cli_inprocess import run_cli_inprocess
from helpers.cli_runner import assert_ok
from helpers.shared_runs import shared_folder
from helpers.text_models import write_tiny_llama

TEXT_CLASSES = ["negative", "positive"]
MAX_LENGTH = 24
POSITIVE = (
    "a wonderful film", "great acting and a lovely story", "I loved every minute", "brilliant and moving",
    "a joy to watch", "superb direction", "delightful and funny", "the best film this year",
    "warm and charming", "an excellent cast", "beautiful music and images", "I would watch it again",
    "a masterpiece", "funny, clever and kind", "truly inspiring", "great fun for everyone",
    "a lovely surprise", "smart and touching", "wonderful performances", "highly recommended",
)  # fmt: skip
NEGATIVE = (
    "a terrible film", "boring and far too long", "I hated every minute", "dull and lifeless",
    "a waste of time", "awful direction", "clumsy and unfunny", "the worst film this year",
    "cold and tedious", "a weak cast", "ugly music and images", "I will never watch it again",
    "a disaster", "stupid, lazy and mean", "truly depressing", "no fun for anyone", "a sad letdown",
    "dumb and empty", "dreadful performances", "avoid it",
)  # fmt: skip


@dataclass(frozen=True)
class TrainedTextRun:
    """A finished ``ftcli train`` of the tiny Llama on ``reviews.csv`` (a quarter held out as test)."""

    folder: Path

    @property
    def run(self) -> Path:
        return self.folder / "run"

    @property
    def checkpoint(self) -> Path:
        return self.run / "checkpoints" / "best.ckpt"

    @property
    def model_folder(self) -> Path:
        return self.folder / "tiny-llama"


def write_reviews(path: Path) -> Path:
    """40 labelled one-line reviews, two classes, alternating: ``text,label``."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for good, bad in zip(POSITIVE, NEGATIVE, strict=True):
            writer.writerow([good, "positive"])
            writer.writerow([bad, "negative"])
    return path


def train_text_run(folder: Path) -> None:
    """``ftcli train`` (a subprocess, as a user runs it) of the tiny Llama; its output in ``stdout.txt``."""
    model = write_tiny_llama(folder / "tiny-llama")
    reviews = write_reviews(folder / "reviews.csv")
    result = run_cli_inprocess(
        "train",
        f"model.name=hf/{model}",
        "model.weights=null",
        "data=text_csv",
        f"data.root={reviews}",
        "data.test_fraction=0.25",
        f"data.max_length={MAX_LENGTH}",
        "strategy=full",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "print_config=false",
        f"hydra.run.dir={folder / 'run'}",
        cwd=folder,
    )
    assert_ok(result)
    (folder / "stdout.txt").write_text(result.stdout)


def trained_text_run(factory: pytest.TempPathFactory) -> TrainedTextRun:
    return TrainedTextRun(shared_folder(factory, "tiny-text-run", train_text_run))
