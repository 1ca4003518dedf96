"""``make bench``'s bookkeeping: rows from repeated runs, per-round ratios, the generated JPEG folder."""

from __future__ import annotations

import pytest

from bench import jpeg, stats


def run(ips: float, epoch: float, rss: float, **extra) -> dict:
    return {"label": "x", "images_per_second": ips, "epoch_seconds": epoch, "peak_rss_mib": rss, **extra}


def test_a_row_holds_the_median_the_spread_and_every_run():
    runs = [
        run(100, 3.0, 900, val_acc=0.5, trainable_params=7),
        run(80, 4.0, 950, val_acc=0.7, trainable_params=7),
        run(120, 2.5, 910, val_acc=0.6, trainable_params=7),
    ]
    row = stats.aggregate(runs, "ftcli full", "digits")
    assert row["label"] == "ftcli full" and row["suite"] == "digits" and row["repeats"] == 3
    assert row["images_per_second"] == 100
    assert (row["images_per_second_min"], row["images_per_second_max"]) == (80, 120)
    assert row["images_per_second_runs"] == [100, 80, 120]
    assert (row["epoch_seconds"], row["epoch_seconds_min"], row["epoch_seconds_max"]) == (3.0, 2.5, 4.0)
    assert row["peak_rss_mib"] == 910 and row["peak_rss_mib_runs"] == [900, 950, 910]
    assert row["val_acc"] == 0.6 and row["trainable_params"] == 7


def test_ratios_are_of_medians_and_the_spread_pairs_each_round():
    full = [run(90, 1, 1), run(50, 1, 1), run(100, 1, 1)]
    raw = [run(100, 1, 1), run(100, 1, 1), run(80, 1, 1)]
    got = stats.ratios(full, raw)
    assert got["median"] == pytest.approx(90 / 100)
    assert got["rounds"] == pytest.approx([0.9, 0.5, 1.25])
    assert (got["min"], got["max"]) == (pytest.approx(0.5), pytest.approx(1.25))


def test_rounds_alternate_their_order_so_a_drift_favours_no_contender():
    contenders = ["raw", "full", "last_layers"]
    orders = [stats.round_order(contenders, r) for r in range(1, 5)]
    assert orders[0] == orders[2] == contenders
    assert orders[1] == orders[3] == ["last_layers", "full", "raw"]
    # over each pair of rounds every contender holds each place on average: the mean slot is equal
    slots = {name: sum(order.index(name) for order in orders) / len(orders) for name in contenders}
    assert set(slots.values()) == {1.0}
    assert contenders == ["raw", "full", "last_layers"]  # the caller's list is left as it was


def test_the_jpeg_folder_is_an_imagefolder_of_real_size_jpegs(tmp_path):
    from PIL import Image

    made = jpeg.make_jpeg_folder(tmp_path / "jpegs", images=10, size=400)
    assert made["classes"] == list(jpeg.JPEG_SOURCES)
    assert (made["train_images"], made["val_images"]) == (5, 5)
    for split in ("train", "val"):
        assert sorted(p.name for p in (tmp_path / "jpegs" / split).iterdir()) == sorted(jpeg.JPEG_SOURCES)
    sizes = [Image.open(p).size for p in (tmp_path / "jpegs").rglob("*.jpg")]
    assert len(sizes) == 10
    assert all(240 <= side <= 400 for size in sizes for side in size)


def test_the_median_step_ratio_reads_its_own_key():
    full = [run(90, 1, 1, step_images_per_second=100), run(50, 1, 1, step_images_per_second=98)]
    raw = [run(100, 1, 1, step_images_per_second=100), run(100, 1, 1, step_images_per_second=100)]
    got = stats.ratios(full, raw, "step_images_per_second")
    assert got["median"] == pytest.approx(0.99) and got["rounds"] == pytest.approx([1.0, 0.98])
    row = stats.aggregate(full, "ftcli full", "digits")
    assert (row["step_images_per_second_min"], row["step_images_per_second_max"]) == (98, 100)
