"""Transformers backbones as blocks: the cut reproduces the model, padding does not change a prediction,
the pooling reads the right token, and bad names or weights are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ftcli.errors import ConfigError, WeightsError
from ftcli.model import hf_models, text_blocks
from ftcli.model.backbones import build_model, family_of, to_blocknet
from ftcli.model.surgery import apply_recipe

from helpers.installed import require_package
from helpers.text_models import minilm_folder

require_package("transformers")

MINILM = "hf/sentence-transformers/all-MiniLM-L6-v2"


def build_net(name: str, folder: Path, pretrained: bool, pool: str = "auto", classes: int = 3):
    model = build_model(name, {}, hf_folder=folder, hf_pretrained=pretrained)
    net, block_map = to_blocknet(model, name, pool)
    apply_recipe(net, block_map, {"name": "linear"}, classes)
    return model, net.eval(), block_map


def padded(rows: list[list[int]], left: bool, pad: int = 0) -> torch.Tensor:
    width = max(map(len, rows))
    ids, mask = [], []
    for row in rows:
        fill = [pad] * (width - len(row))
        ids.append(fill + row if left else row + fill)
        mask.append([0] * len(fill) + [1] * len(row) if left else [1] * len(row) + [0] * len(fill))
    return torch.stack([torch.tensor(ids), torch.tensor(mask)], dim=1)


@pytest.fixture(scope="module")
def minilm():
    return build_net(MINILM, minilm_folder(), pretrained=True)


@pytest.fixture(scope="module")
def llama(tiny_llama: str):
    torch.manual_seed(0)
    return build_net(tiny_llama, Path(tiny_llama[3:]), pretrained=False)


def test_minilm_is_cut_into_stem_six_layers_and_a_mean_pooling_head(minilm) -> None:
    _, net, block_map = minilm
    assert net.block_names == ["stem", *(f"stage{i}" for i in range(1, 7)), "head"]
    assert net.family == family_of(MINILM) == "hf"
    assert net.input.modality == "tokens" and net.input.max_tokens == 512
    assert net.blocks["head"].pool.mode == "mean"
    assert "6 transformer layers in 6 blocks" in block_map.notes[0]
    assert any("strategy.bn does not apply" in note for note in block_map.notes)


def test_a_decoder_pools_its_last_token_and_groups_layers_into_at_most_twelve_blocks(
    llama, tmp_path: Path
) -> None:
    _, net, _ = llama
    assert net.blocks["head"].pool.mode == "last"
    assert net.backbone_names == ["stem", "stage1", "stage2"]
    assert (
        text_blocks.group_size(30) == 3
        and text_blocks.group_size(12) == 1
        and text_blocks.group_size(13) == 2
    )


def test_layers_per_block_sets_the_grouping_and_a_checkpoint_loads_across_groupings(minilm) -> None:
    """``model.layers_per_block``: at most that many layers per block (near-equal blocks); a state in
    one grouping's names is renamed to another's, layer for layer, and computes the same logits."""
    assert [text_blocks.group_size(30, n) for n in ("auto", 1, 4, 99)] == [3, 1, 4, 30]
    _, by_one, _ = minilm  # 6 layers: one per block
    torch.manual_seed(0)
    model = build_model(MINILM, {}, hf_folder=minilm_folder(), hf_pretrained=False)
    by_four, block_map = to_blocknet(model, MINILM, "auto", 4)  # ceil(6 / 4) = 2 blocks of 3
    apply_recipe(by_four, block_map, {"name": "linear"}, 3)
    assert by_four.block_names == ["stem", "stage1", "stage2", "head"]
    assert "6 transformer layers in 2 blocks (3 per block, model.layers_per_block" in block_map.notes[0]
    state = text_blocks.regrouped(dict(by_one.state_dict()), by_four.state_dict())
    assert "blocks.stage2.layers.2.output.dense.weight" in state  # layer 5 of 6 is the last of stage 2
    by_four.load_state_dict(state)  # strict: every tensor found under its new name
    x = padded([[101, 2307, 3185, 2003, 102], [101, 2919, 102]], left=False)
    with torch.no_grad():
        assert torch.equal(by_four.eval()(x), by_one(x))
    assert text_blocks.regrouped(state, by_four.state_dict()) is state  # already in this grouping
    with pytest.raises(ConfigError, match="applies to text models only"):
        from torchvision.models import resnet18

        to_blocknet(resnet18(), "resnet18", "auto", 1)


@pytest.mark.parametrize("which", ["minilm", "llama"])
def test_running_the_blocks_reproduces_the_models_own_hidden_states(which: str, request) -> None:
    model, _, block_map = request.getfixturevalue(which)
    ids = torch.tensor([[5, 17, 99, 3, 8, 2000]])
    x = torch.stack([ids, torch.ones_like(ids)], dim=1)
    state = x
    with torch.no_grad():
        for _, block in block_map.blocks:
            state = block(state)
        own = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert torch.allclose(state.hidden, own, atol=1e-5)


def test_a_mapping_that_skips_a_layer_is_refused(llama) -> None:
    model, _, _ = llama
    block_map = text_blocks.to_blocks(model)
    block_map.blocks[1][1].layers = block_map.blocks[1][1].layers[:0]  # drop a layer behind the model's back
    with pytest.raises(ConfigError, match="does not reproduce"):
        text_blocks.check_blocks_reproduce(model, block_map)


@pytest.mark.parametrize("which", ["minilm", "llama"])
def test_left_and_right_padding_give_the_same_logits_as_the_text_alone(which: str, request) -> None:
    _, net, _ = request.getfixturevalue(which)
    texts = [[101, 2307, 3185, 2003, 102], [101, 2919, 102]]
    with torch.no_grad():
        right = net(padded(texts, left=False))
        left = net(padded(texts, left=True))
        alone = net(padded(texts[1:], left=False))
    assert torch.allclose(right, left, atol=1e-5)
    assert torch.allclose(right[1:], alone, atol=1e-5)


def test_the_pools_read_the_last_real_token_the_first_one_and_the_mean_of_real_tokens() -> None:
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])
    state = text_blocks.TokenState(hidden, mask, {})
    assert text_blocks.TokenPool("last")(state).flatten().tolist() == [2.0, 7.0]
    assert text_blocks.TokenPool("cls")(state).flatten().tolist() == [0.0, 5.0]
    assert text_blocks.TokenPool("mean")(state).flatten().tolist() == [1.0, 6.0]


def test_recipe_pool_is_checked_and_refused_for_image_models(tiny_net) -> None:
    with pytest.raises(ConfigError, match=r"recipe\.pool=max is not valid"):
        text_blocks.check_pool("max")
    from torchvision.models import resnet18

    with pytest.raises(ConfigError, match="applies to text models only"):
        to_blocknet(resnet18(), "resnet18", "mean")


def test_names_and_weights_words_are_checked_before_anything_loads(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a Hugging Face repo id"):
        family_of("hf/not a repo")
    assert family_of("hf/someone/some-model") == "hf"
    with pytest.raises(WeightsError, match="no installed package holds someone/some-model"):
        hf_models.check_weights("hf/someone/some-model", "package")
    with pytest.raises(WeightsError, match="not a weights source"):
        hf_models.check_weights(MINILM, "imagenet")
    assert hf_models.model_folder(f"hf/{tmp_path}", None) == tmp_path.resolve()


def test_an_uncached_hub_model_offline_names_the_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FTCLI_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsError, match="not in the Hugging Face cache") as caught:
        hf_models.hub_folder("someone/not-cached-model")
    assert "Cache folder:" in str(caught.value)


def test_a_model_wheel_unpacked_into_the_environment_is_found_like_an_installed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ftcli.model import hf_models

    monkeypatch.setattr(hf_models, "unpacked_root", lambda: tmp_path)
    assert hf_models.installed_folder("ftcli_no_such_model_wheel") is None
    (tmp_path / "ftcli_no_such_model_wheel").mkdir()
    assert hf_models.installed_folder("ftcli_no_such_model_wheel") == tmp_path / "ftcli_no_such_model_wheel"


def remote_code_folder(folder: Path) -> Path:
    """A model folder whose config.json maps the Auto classes to a module shipped in it: importing that
    module would leave ``remote_model.py.ran`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "remote_model.py").write_text('open(__file__ + ".ran", "w").close()\n')
    auto_map = {
        "AutoConfig": "remote_model.TinyConfig",
        "AutoModel": "remote_model.TinyModel",
        "AutoTokenizer": ["remote_model.TinyTokenizer", None],
    }
    (folder / "config.json").write_text(json.dumps({"model_type": "tiny_remote", "auto_map": auto_map}))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {"tokenizer_class": "TinyTokenizer", "auto_map": {"AutoTokenizer": auto_map["AutoTokenizer"]}}
        )
    )
    return folder


@pytest.mark.parametrize("pretrained", [True, False])
def test_a_model_that_needs_its_own_code_is_refused_unless_trust_remote_code_is_on(
    tmp_path: Path, pretrained: bool
) -> None:
    folder = remote_code_folder(tmp_path / "remote")
    assert hf_models.remote_code_modules(folder) == [
        "remote_model.TinyConfig",
        "remote_model.TinyModel",
        "remote_model.TinyTokenizer",
    ]
    for kwargs in ({}, {"trust_remote_code": False}):
        with pytest.raises(ConfigError) as caught:
            hf_models.build(folder, pretrained, kwargs)
        assert "needs trust_remote_code" in str(caught.value)
        assert "+model.kwargs.trust_remote_code=true" in str(caught.value)
    with pytest.raises(ConfigError, match="trust_remote_code=yes is not valid"):
        hf_models.build(folder, pretrained, {"trust_remote_code": "yes"})
    assert not (folder / "remote_model.py.ran").exists()


def test_a_tokenizer_that_needs_its_own_code_is_refused_without_running_it(tmp_path: Path) -> None:
    from ftcli.data.text.tokenizer import load_tokenizer

    folder = remote_code_folder(tmp_path / "remote")
    with pytest.raises(ConfigError) as caught:
        load_tokenizer(str(folder))
    assert "needs trust_remote_code" in str(caught.value)
    assert "+model.kwargs.trust_remote_code=true" in str(caught.value)
    assert not (folder / "remote_model.py.ran").exists()


def test_trust_remote_code_is_passed_false_unless_the_user_sets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    seen: list[object] = []

    def from_pretrained(folder: Path, **kwargs: object) -> str:
        seen.append(kwargs.get("trust_remote_code", "missing"))
        return "model"

    def from_config(config: object, **kwargs: object) -> str:
        seen.append(kwargs.get("trust_remote_code", "missing"))
        return "model"

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", from_pretrained)
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", from_pretrained)
    monkeypatch.setattr(transformers.AutoModel, "from_config", from_config)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"model_type": "bert"}))
    remote = remote_code_folder(tmp_path / "remote")
    for pretrained in (True, False):
        seen.clear()
        hf_models.build(plain, pretrained, {})
        assert seen and all(value is False for value in seen)
        seen.clear()
        hf_models.build(remote, pretrained, {"trust_remote_code": True})  # turned on by name: passed on
        assert seen and all(value is True for value in seen)
