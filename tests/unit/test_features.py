"""Feature caching for frozen backbones, and the frozen prefix doing no autograd work."""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import DictConfig

from ftcli.features import cache as feature_cache
from ftcli.features import datamodules as feature_data
from ftcli.finetune.freeze_plan import apply_plan
from ftcli.finetune.phases import make_schedule
from ftcli.model.blocks import HEAD
from ftcli.pipeline import plan_run
from ftcli.training.lightning_module import FineTuneModule

from helpers.cli_inprocess import run_cli_inprocess

pytestmark = pytest.mark.usefixtures("single_thread")

CPU = torch.device("cpu")


def prepared_run(cfg: DictConfig, cache_dir: Path | None) -> tuple[FineTuneModule, object, object, object]:
    """Seed, prepare and build the module like ``ftcli train``; with ``cache_dir``, the feature cache's
    datamodule (it must be used). Returns (module, run_plan, datamodule, cache report)."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    run_plan = plan_run(cfg)
    module = run_plan.module()
    datamodule, report = run_plan.datamodule, None
    if cache_dir is not None:
        data_cfg = {**run_plan.datamodule.cfg, "feature_cache_dir": str(cache_dir)}
        datamodule, report = feature_data.maybe_cached(
            datamodule, run_plan.net, run_plan.schedule, data_cfg, CPU, module.feed_features
        )
        assert report is not None and report.used, report
    return module, run_plan, datamodule, report


def fit(cfg: DictConfig, cache: bool, tmp_path: Path) -> tuple[FineTuneModule, object, float]:
    """Prepare and fit like ``ftcli train`` (same seed), with or without the feature cache."""
    module, run_plan, datamodule, _ = prepared_run(cfg, tmp_path / "cache" if cache else None)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, datamodule=datamodule)
    val = trainer.validate(module, datamodule=datamodule, verbose=False)[0]["val/acc"]
    return module, run_plan, float(val)


@pytest.fixture
def fe_cfg(compose_train: Callable[..., DictConfig]) -> DictConfig:
    return compose_train("strategy=feature_extraction", "data.per_class=10", "optimizer.lr=0.01")


def test_cache_eligible_only_when_just_the_head_trains_on_fixed_inputs(tiny_net: Callable) -> None:
    net = tiny_net()
    schedule = make_schedule({"name": "feature_extraction"}, net)
    assert feature_cache.cache_eligible(schedule, None) == (True, "")
    ok, reason = feature_cache.cache_eligible(schedule, {"hflip": True})
    assert not ok and "data.augment" in reason
    for bn in ("train", "affine"):
        fe_bn = make_schedule({"name": "feature_extraction", "bn": bn}, net)
        ok, reason = feature_cache.cache_eligible(fe_bn, None)
        assert not ok and f"strategy.bn={bn}" in reason
    for strategy in ({"name": "last_layers", "n": 1}, {"name": "full"}, {"name": "first_layers", "n": 2}):
        assert feature_cache.cache_eligible(make_schedule(strategy, net), None) == (False, "")
    # a leading head-only phase (lp_ft's probe, gradual's first phase) runs on the cache, the rest live
    for strategy in ({"name": "lp_ft", "probe_epochs": 2}, {"name": "gradual"}):
        schedule = make_schedule(strategy, net)
        assert feature_cache.cache_eligible(schedule, None) == (True, "")
        assert feature_cache.cached_phases(schedule) == (0,)


@pytest.mark.slow  # fits networks (7-30 s on 2 cores): run by `make test`, not `make test-fast`
def test_cached_and_live_feature_extraction_agree(fe_cfg: DictConfig, tmp_path: Path) -> None:
    live, _, live_acc = fit(fe_cfg, cache=False, tmp_path=tmp_path / "live")
    cached, _, cached_acc = fit(fe_cfg, cache=True, tmp_path=tmp_path / "cached")
    assert cached.input_tail is not None and live.input_tail is None
    assert cached_acc == pytest.approx(live_acc, abs=1e-6)
    for (name, a), b in zip(live.model.state_dict().items(), cached.model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


@pytest.mark.slow  # fits networks (7-30 s on 2 cores): run by `make test`, not `make test-fast`
def test_checkpoint_of_a_cached_run_holds_the_whole_model(fe_cfg: DictConfig, tmp_path: Path) -> None:
    module, run_plan, _ = fit(fe_cfg, cache=True, tmp_path=tmp_path)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict()}, path)
    state = torch.load(path, weights_only=True)["state_dict"]
    assert {k.split(".")[2] for k in state if k.startswith("model.blocks.")} == set(run_plan.net.block_names)

    fresh = plan_run(fe_cfg).net  # same architecture, untrained head
    fresh.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    fresh.eval()
    module.model.eval()
    images = torch.stack([run_plan.datamodule.dataset("val")[i][0] for i in range(16)])
    with torch.no_grad():
        on_images = fresh(images)
        via_features = module.input_tail(feature_cache.cut_of(fresh).prefix(fresh, images))
    assert torch.allclose(on_images, module.model(images), atol=1e-5)
    assert torch.equal(on_images.argmax(1), via_features.argmax(1))


def test_cache_is_reused_and_keyed_by_weights_and_transform(fe_cfg: DictConfig, tmp_path: Path) -> None:
    run_plan = plan_run(fe_cfg)
    settings = {**run_plan.datamodule.cfg, "feature_cache_dir": str(tmp_path)}

    def run(p: object) -> feature_data.CacheReport:
        _, report = feature_data.maybe_cached(
            p.datamodule,
            p.net,
            p.schedule,
            settings,
            CPU,
            lambda tail: None,  # type: ignore[attr-defined]
        )
        assert report is not None
        return report

    first = run(run_plan)
    assert (first.computed, first.loaded) == (3, 0)
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"
    assert (run(run_plan).computed, run(run_plan).loaded) == (0, 3)
    damaged = next(tmp_path.glob("*-val-*.pt"))  # cut short: a crash of an older version
    damaged.write_bytes(damaged.read_bytes()[:100])
    rebuilt = run(run_plan)
    assert (rebuilt.computed, rebuilt.loaded) == (1, 2)
    assert rebuilt.notices() == [
        f"note: the feature cache file {damaged} could not be read (damaged, or written by another "
        "version); it was computed again"
    ]
    assert run(run_plan).loaded == 3

    with torch.no_grad():
        run_plan.net.blocks["stem"][0].weight.add_(0.01)  # other weights: other features
    assert run(run_plan).computed == 3

    ds = run_plan.datamodule.dataset("val")
    key = feature_cache.cache_key(run_plan.net, feature_cache.cut_of(run_plan.net), ds, CPU)
    other = plan_run(_with(fe_cfg, "data.image_size", 40))
    other_ds = other.datamodule.dataset("val")
    assert feature_cache.cache_key(run_plan.net, feature_cache.cut_of(run_plan.net), other_ds, CPU) != key


def test_two_writers_of_one_cache_file_leave_it_whole_and_readers_never_see_half(tmp_path: Path) -> None:
    """Two runs computing the same split at once: each writes its own temporary, then moves it over
    the name (``atomic_files``); a reader opens the old file or the new one, never a part of one."""
    path = tmp_path / "resnet-train-key.pt"
    features = {"features": torch.randn(64, 32), "labels": torch.arange(64)}
    done = threading.Event()
    seen: list[str] = []

    def write() -> None:
        for _ in range(15):
            feature_cache.save_tensors(path, features)

    def read() -> None:
        while not done.is_set():
            try:
                loaded = torch.load(path, weights_only=True)
            except FileNotFoundError:
                continue
            seen.append("whole" if torch.equal(loaded["features"], features["features"]) else "other")

    writers = [threading.Thread(target=write) for _ in range(2)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert seen and set(seen) == {"whole"}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a device that is always full)")
def test_a_full_disk_under_a_cache_file_is_an_os_error_not_torchs_runtime_error() -> None:
    """What the error boundary names as a full disk: torch.save given the path says RuntimeError."""
    with pytest.raises(OSError) as full:
        feature_cache.save_through_file({"features": torch.zeros(100_000)}, Path("/dev/full"))
    assert full.value.errno == errno.ENOSPC


def test_cache_switch_and_fallback_reasons(fe_cfg: DictConfig, tmp_path: Path) -> None:
    run_plan = plan_run(fe_cfg)
    base = {**run_plan.datamodule.cfg, "feature_cache_dir": str(tmp_path)}
    dm, report = feature_data.maybe_cached(
        run_plan.datamodule, run_plan.net, run_plan.schedule, {**base, "cache_features": False}, CPU, print
    )
    assert dm is run_plan.datamodule and report is None
    dm, report = feature_data.maybe_cached(
        run_plan.datamodule, run_plan.net, run_plan.schedule, {**base, "augment": {"hflip": True}}, CPU, print
    )
    assert dm is run_plan.datamodule and report is not None and not report.used
    assert "data.augment" in report.line()
    assert not list(tmp_path.iterdir())


def test_frozen_prefix_gets_no_gradients(tiny_net: Callable) -> None:
    net = tiny_net()
    plan = make_schedule({"name": "last_layers", "n": 1}, net).first
    apply_plan(net, plan)
    net.train()
    loss = net(torch.randn(2, 3, 32, 32)).sum()
    assert loss.requires_grad
    loss.backward()
    for name, param in net.named_parameters():
        block = name.split(".")[1]
        if block in plan.trainable_blocks:
            assert param.grad is not None, name
        else:
            assert param.grad is None, name


def test_forward_from_matches_forward(tiny_net: Callable) -> None:
    net = tiny_net().eval()
    x = torch.randn(2, 3, 32, 32)
    stop = len(net.block_names) - 1
    with torch.no_grad():
        assert torch.allclose(net.forward_from(net.forward_until(x, stop), stop), net(x), atol=1e-6)
        assert torch.allclose(net.forward_from(net.forward_until(x, 2), 2), net(x), atol=1e-6)
    assert net.block_names[stop] == HEAD


@pytest.mark.slow
def test_cli_reuses_the_cache_and_says_why_when_it_cannot(tmp_path: Path) -> None:
    common = [
        "train",
        "model=resnet18",
        "model.weights=null",
        "strategy=feature_extraction",
        "data.per_class=5",
        "trainer.max_epochs=1",
        "print_config=false",
        "trainer.enable_progress_bar=false",
        f"data.feature_cache_dir={tmp_path / 'cache'}",
    ]
    first = run_cli_inprocess(*common, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "feature cache: on" in first.stdout and "3 computed" in first.stdout
    second = run_cli_inprocess(*common, f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert "3 split(s) loaded" in second.stdout
    third = run_cli_inprocess(
        *common, "data.augment.hflip=true", f"hydra.run.dir={tmp_path / 'c'}", cwd=tmp_path
    )
    assert third.returncode == 0, third.stderr
    assert "feature cache: off (data.augment is on" in " ".join(third.stdout.split())


def _with(cfg: DictConfig, key: str, value: object) -> DictConfig:
    from omegaconf import OmegaConf

    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    OmegaConf.update(copy, key, value)
    return copy


FAMILIES_WITH_STOCHASTIC_DEPTH = [
    ("efficientnet_b0", []),  # torchvision: stochastic depth 0.2, dropout in the blocks' squeeze path
    ("convnext_tiny", []),  # torchvision: stochastic depth 0.1
    ("efficientnet_lite0", ["+model.kwargs.drop_path_rate=0.3"]),  # timm's drop_path
]


@pytest.mark.parametrize(("model", "extra"), FAMILIES_WITH_STOCHASTIC_DEPTH, ids=lambda v: str(v))
def test_frozen_prefix_is_a_fixed_function_under_bn_frozen(
    compose_train: Callable[..., DictConfig], model: str, extra: list[str]
) -> None:
    """With strategy.bn=frozen the live frozen prefix in train mode computes exactly what the cache stores
    (eval mode): no dropout, no stochastic depth, no BN statistics update. bn=train keeps the old
    behaviour (the block follows the network's mode), so there the two differ."""
    cfg = compose_train(f"model={model}", "model.weights=null", "data.image_size=32", *extra)
    run_plan = plan_run(_with(cfg, "strategy", {"name": "feature_extraction", "bn": "frozen"}))
    net, cut = run_plan.net, feature_cache.cut_of(run_plan.net)
    apply_plan(net, run_plan.schedule.first)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net.eval()
    with torch.no_grad():
        cached = cut.prefix(net, x)
    net.train()
    assert net.training and net.blocks[HEAD].training
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        live = [cut.prefix(net, x) for _ in range(2)]
    assert torch.equal(live[0], cached) and torch.equal(live[1], cached)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # no BN statistics moved

    bn_train = plan_run(_with(cfg, "strategy", {"name": "feature_extraction", "bn": "train"}))
    apply_plan(bn_train.net, bn_train.schedule.first)
    bn_train.net.load_state_dict(before)
    bn_train.net.train()
    with torch.no_grad():
        drawn = cut.prefix(bn_train.net, x)
    assert not torch.equal(drawn, cached)


@pytest.mark.slow  # fits networks (7-30 s on 2 cores): run by `make test`, not `make test-fast`
def test_cached_and_live_agree_with_drop_path(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """A timm network with stochastic depth: training on cached features equals training live."""
    cfg = compose_train(
        "model=efficientnet_lite0", "model.weights=null", "+model.kwargs.drop_path_rate=0.3",
        "strategy=feature_extraction", "data.per_class=6", "optimizer.lr=0.01",
    )  # fmt: skip
    live, _, live_acc = fit(cfg, cache=False, tmp_path=tmp_path / "live")
    cached, _, cached_acc = fit(cfg, cache=True, tmp_path=tmp_path / "cached")
    assert cached_acc == pytest.approx(live_acc, abs=1e-6)
    for (name, a), b in zip(live.model.state_dict().items(), cached.model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


def fit_phases(
    cfg: DictConfig,
    cache: bool,
    tmp_path: Path,
    max_epochs: int,
    resume: str | None = None,
    callbacks: tuple[L.Callback, ...] = (),
) -> tuple[FineTuneModule, L.Trainer, object]:
    """Like ``ftcli train``: the feature cache for the leading head-only phases, then the live network."""
    module, _, datamodule, report = prepared_run(cfg, tmp_path.parent / "cache" if cache else None)
    assert report is None or "then the live network" in report.line()
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=max_epochs, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=str(tmp_path),
        reload_dataloaders_every_n_epochs=1 if cache else 0,
        callbacks=[L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True), *callbacks],
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    return module, trainer, datamodule


def _same_weights(a: FineTuneModule, b: FineTuneModule) -> None:
    """Equal to float rounding (in practice bit for bit: the cache computes what the fixed prefix does)."""
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), (name, float((x - y).abs().max()))


@pytest.mark.slow  # fits networks (7-30 s on 2 cores): run by `make test`, not `make test-fast`
@pytest.mark.parametrize("strategy", ["strategy=lp_ft", "strategy=gradual"])
def test_cached_probe_phase_then_live_equals_all_live(
    compose_train: Callable[..., DictConfig], tmp_path: Path, strategy: str
) -> None:
    cfg = (
        compose_train(strategy, "strategy.probe_epochs=2", "data.per_class=6", "data.batch_size=16")
        if "lp_ft" in strategy
        else (compose_train(strategy, "strategy.every=2", "data.per_class=6", "data.batch_size=16"))
    )
    live, _, _ = fit_phases(cfg, cache=False, tmp_path=tmp_path / "live", max_epochs=3)
    cached, _, datamodule = fit_phases(cfg, cache=True, tmp_path=tmp_path / "cached", max_epochs=3)
    assert isinstance(datamodule, feature_data.PhasedDataModule) and datamodule.cached_until == 2
    assert cached.phase_index == 1 and not datamodule.features_now()  # epoch 2 ran live
    _same_weights(live, cached)
    # the test split (after fit) is served as images to the whole network
    x, _ = next(iter(datamodule.test_dataloader()))
    assert x.dim() == 4


@pytest.mark.slow  # fits networks (7-30 s on 2 cores): run by `make test`, not `make test-fast`
def test_a_run_resumed_inside_the_cached_phase_equals_the_same_run_resumed_live(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    cfg = compose_train("strategy=lp_ft", "strategy.probe_epochs=2", "data.per_class=6", "data.batch_size=16")
    resumed = {}
    for cache in (False, True):
        first = tmp_path / f"first-{cache}"
        fit_phases(cfg, cache=cache, tmp_path=first, max_epochs=1)  # stops inside the probe phase
        resumed[cache], _, _ = fit_phases(
            cfg,
            cache=cache,
            tmp_path=tmp_path / f"resumed-{cache}",
            max_epochs=3,
            resume=str(first / "last.ckpt"),
        )
    _same_weights(resumed[False], resumed[True])


@pytest.mark.slow  # fits networks (7-30 s on 2 cores): run by `make test`, not `make test-fast`
def test_bn_recalibration_after_a_cached_probe_phase_reads_the_stored_images(
    compose_train: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """The recalibration pass takes its batches from the datamodule itself: stored uint8 batches must
    reach the network normalised (the trainer's on_after_batch_transfer), in the live phase too."""
    from ftcli.training.callbacks.bn_recalibration import RecalibrateBatchNorm

    cfg = compose_train("strategy=lp_ft", "strategy.probe_epochs=1", "data.per_class=6", "data.batch_size=16")
    recalibrate = RecalibrateBatchNorm()
    _, _, datamodule = fit_phases(cfg, cache=True, tmp_path=tmp_path, max_epochs=2, callbacks=(recalibrate,))
    assert isinstance(datamodule, feature_data.PhasedDataModule)
    assert recalibrate.images == 60  # every training image, in the live phase
