"""The SHA-256 ftcli stores in the .safetensors files it writes (ftcli/model/safetensors_checksum.py):
the file still loads anywhere, a changed byte is a WeightsError naming it, others' files load as before,
and a damaged converted model is converted again rather than used."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ftcli.errors import WeightsError
from ftcli.model import hf_models, safetensors_checksum
from ftcli.model.weights_file import read_file

STATE = {"layer.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "layer.bias": torch.ones(3)}


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_written_file_loads_with_its_metadata_and_checksum(tmp_path: Path) -> None:
    path = safetensors_checksum.save(STATE, tmp_path / "w.safetensors", metadata={"format": "pt"})
    assert safetensors_checksum.verify(path) is True
    loaded = load_file(str(path))  # safetensors itself still reads it
    assert all(torch.equal(loaded[k], v) for k, v in STATE.items())
    header, _ = safetensors_checksum.read_header(path)
    assert header["__metadata__"]["format"] == "pt" and len(header["__metadata__"]["ftcli_sha256"]) == 64
    assert torch.equal(read_file(path)["state_dict"]["layer.weight"], STATE["layer.weight"])
    assert not list(tmp_path.glob("*.raw")) and sorted(p.name for p in tmp_path.iterdir()) == [
        "w.safetensors"
    ]


def test_a_changed_byte_is_an_error_naming_the_file_and_others_files_load_as_before(tmp_path: Path) -> None:
    path = safetensors_checksum.save(STATE, tmp_path / "w.safetensors")
    flip_last_byte(path)
    assert load_file(str(path))  # the format alone does not notice
    with pytest.raises(WeightsError, match=r"w\.safetensors is damaged: the SHA-256 of its tensors differs"):
        read_file(path)
    theirs = tmp_path / "theirs.safetensors"
    save_file(STATE, str(theirs))
    flip_last_byte(theirs)
    assert safetensors_checksum.verify(theirs) is False and "state_dict" in read_file(theirs)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(WeightsError, match=r"not a readable \.safetensors file"):
        read_file(tmp_path / "junk.safetensors")


def test_a_damaged_converted_model_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = safetensors_checksum.save(STATE, tmp_path / "model.safetensors")
    assert hf_models._intact(path)
    flip_last_byte(path)
    hf_models._verified.cache_clear()  # the file's mtime may not have ticked since the first check
    with caplog.at_level(logging.WARNING, logger="ftcli"):
        assert not hf_models._intact(path)
    assert "is damaged" in caplog.text and "Converting it again" in caplog.text
