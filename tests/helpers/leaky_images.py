"""An image folder whose val/ holds 5 exact copies of train/ images under new names: the leak check's case."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

COPIED = [("cat", 0), ("cat", 1), ("cat", 2), ("dog", 0), ("dog", 1)]


def copied_into_val(root: Path) -> list[Path]:
    """``root/train/<class>/<i>.png`` (6 per class), ``root/val/<class>/own.png`` and the 5 copies
    ``root/val/<class>/copy<k>.png`` of ``COPIED``, which it returns. 16x16 PNGs, a colour each."""
    for c, name in enumerate(("cat", "dog")):
        (root / "train" / name).mkdir(parents=True)
        (root / "val" / name).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (16, 16), (40 * i, 120 * c, 200)).save(root / "train" / name / f"{i}.png")
        Image.new("RGB", (16, 16), (7, 120 * c, 9)).save(root / "val" / name / "own.png")
    copies = []
    for k, (name, i) in enumerate(COPIED):
        copies.append(root / "val" / name / f"copy{k}.png")
        copies[-1].write_bytes((root / "train" / name / f"{i}.png").read_bytes())
    return copies
