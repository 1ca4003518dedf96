"""A text model trains through the same pipeline as images: frozen blocks stay bit-identical, the
feature cache serves a frozen network (pooled vectors, or the fixed blocks' hidden states), advise and
strategy=auto measure it, a sweep runs one job per strategy, and a text model with image data (or the
reverse) is refused."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ftcli.command_line.config_groups import config_dir
from ftcli.errors import ConfigError
from ftcli.pipeline import plan_run

from helpers.fitting import fit_config
from helpers.installed import require_package
from helpers.text_models import compose_text_train

require_package("transformers")

POSITIVE = ["a wonderful film", "great acting", "i loved it", "brilliant and funny", "a joy", "superb"]
NEGATIVE = ["a boring mess", "terrible acting", "i hated it", "dull and too long", "a waste", "awful"]


@pytest.fixture(scope="module")
def reviews(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV of 36 short labelled texts (two classes)."""
    path = tmp_path_factory.mktemp("texts") / "reviews.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(18):
            writer.writerow([f"{POSITIVE[i % 6]} {'really ' * (i % 4)}", "pos"])
            writer.writerow([f"{NEGATIVE[i % 6]} {'really ' * (i % 3)}", "neg"])
    return path


def text_config(model: str, reviews: Path, *overrides: str) -> DictConfig:
    return compose_text_train(model, reviews, "model.weights=null", "data.batch_size=8", "seed=3", *overrides)


def test_frozen_text_blocks_are_bit_identical_after_training_and_the_rest_moved(
    tiny_llama: str, reviews: Path, tmp_path: Path
) -> None:
    cfg = text_config(
        tiny_llama, reviews, "strategy=last_layers", "strategy.n=1", "data.cache_features=false"
    )
    L.seed_everything(int(cfg.seed), verbose=False)  # as fit_config does: the same random init
    run_plan = plan_run(cfg)
    before = {k: v.clone() for k, v in run_plan.net.state_dict().items()}
    module, _ = fit_config(cfg, tmp_path, epochs=2)
    after = module.model.state_dict()
    for name, tensor in before.items():
        frozen = name.startswith(("blocks.stem.", "blocks.stage1."))
        if frozen:
            assert torch.equal(after[name], tensor), f"{name} changed although its block is frozen"
    moved = [
        n
        for n in before
        if n.startswith(("blocks.stage2.", "blocks.head.")) and not torch.equal(after[n], before[n])
    ]
    assert any(n.startswith("blocks.stage2.") for n in moved) and any(
        n.startswith("blocks.head.") for n in moved
    )


def test_feature_extraction_on_text_trains_the_head_on_cached_features(
    tiny_llama: str, reviews: Path, tmp_path: Path
) -> None:
    cfg = text_config(
        tiny_llama, reviews, "strategy=feature_extraction", f"data.feature_cache_dir={tmp_path / 'cache'}"
    )
    from ftcli.features.datamodules import FeatureDataModule, maybe_cached

    run_plan = plan_run(cfg)
    module = run_plan.module()
    served, report = maybe_cached(
        run_plan.datamodule, run_plan.net, run_plan.schedule, run_plan.datamodule.cfg,
        torch.device("cpu"), module.feed_features,
    )  # fmt: skip
    assert isinstance(served, FeatureDataModule) and report is not None and report.used
    features = served.splits["train"].features
    assert features.shape == (len(run_plan.datamodule.dataset("train")), 32)  # pooled: one vector per text
    # the cached features are what the live network computes, in the split's order
    dataset = run_plan.datamodule.dataset("train")
    x, _ = dataset.collate([dataset[i] for i in range(4)])
    run_plan.net.eval()
    with torch.no_grad():
        live = run_plan.net.blocks["head"].pool(
            run_plan.net.forward_until(x, len(run_plan.net.block_names) - 1)
        )
    assert torch.allclose(features[:4], live, atol=1e-5)


def test_a_text_model_refuses_image_data_and_an_image_model_refuses_text(
    reviews: Path, tiny_llama: str
) -> None:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        text_on_images = compose(
            "train", overrides=[f"model.name={tiny_llama}", "model.weights=null", "data=digits"]
        )
        images_on_text = compose(
            "train", overrides=["model=resnet18", "data=text_csv", f"data.root={reviews}"]
        )
    with pytest.raises(ConfigError, match="reads text, but data=digits holds images"):
        plan_run(text_on_images)
    with pytest.raises(ConfigError, match=r"holds texts, but model\.name=resnet18 reads images"):
        plan_run(images_on_text)


def test_mixup_is_refused_for_text(tiny_llama: str, reviews: Path) -> None:
    with pytest.raises(ConfigError, match="does not apply to text"):
        plan_run(text_config(tiny_llama, reviews, "mixup.mixup_alpha=0.2"))


def test_advise_probes_every_text_block_against_random_init_and_token_counts(
    tiny_llama: str, reviews: Path
) -> None:
    from ftcli.advice.advisor import advise
    from ftcli.finetune.strategies import STRATEGIES

    advice = advise(text_config(tiny_llama, reviews))
    measured = advice.measurements
    assert measured.blocks == ["stem", "stage1", "stage2"]
    assert set(measured.pretrained) == set(measured.random_init) == set(measured.blocks)
    # 28 of the 36 texts: the rest are the validation and test splits
    assert (measured.noun, measured.input_size, measured.samples) == ("texts", "at most 128 tokens", 28)
    # the two classes use different words, so counting token ids separates them (chance: 50%)
    assert measured.raw_input_name == "token counts" and measured.raw_input.accuracy > 0.7
    assert advice.decision.strategy in STRATEGIES
    again = advise(text_config(tiny_llama, reviews))  # the block features come from the cache
    assert again.measurements.features_loaded
    assert again.measurements.pretrained == measured.pretrained


def test_auto_on_text_trains_with_the_advisors_pick(tiny_llama: str, reviews: Path, tmp_path: Path) -> None:
    import json

    from helpers.cli_inprocess import run_cli_inprocess
    from helpers.cli_runner import assert_ok

    run = tmp_path / "auto"
    result = run_cli_inprocess(
        "train", f"model.name={tiny_llama}", "model.weights=null", "data=text_csv", f"data.root={reviews}",
        "data.batch_size=8", "trainer=cpu", "trainer.max_epochs=1", "seed=3", "strategy=auto",
        "auto.mode=rule", f"data.feature_cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={run}",
        cwd=tmp_path,
    )  # fmt: skip
    assert_ok(result)
    advice = json.loads((run / "advice.json").read_text())
    assert advice["measurements"]["noun"] == "texts"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["advice"]["overrides"] == advice["decision"]["overrides"]
    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["ftcli"]["strategy"]["name"] == advice["decision"]["strategy"]


def test_last_layers_on_text_trains_on_the_cached_hidden_states_of_the_fixed_blocks(
    tiny_llama: str, reviews: Path, tmp_path: Path
) -> None:
    from ftcli.features.datamodules import FeatureDataModule, maybe_cached
    from ftcli.features.token_states import TokenStates

    def trained(cache: str) -> tuple[dict[str, torch.Tensor], object]:
        cfg = text_config(
            tiny_llama, reviews, "strategy=last_layers", "strategy.n=1", f"data.cache_features={cache}",
            f"data.feature_cache_dir={tmp_path / 'cache'}",
        )  # fmt: skip
        L.seed_everything(int(cfg.seed), workers=True, verbose=False)
        run_plan = plan_run(cfg)
        module = run_plan.module()
        served, _ = maybe_cached(
            run_plan.datamodule, run_plan.net, run_plan.schedule, run_plan.datamodule.cfg,
            torch.device("cpu"), module.feed_features,
        )  # fmt: skip
        trainer = L.Trainer(
            accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path / cache),
        )  # fmt: skip
        before = {k: v.clone() for k, v in module.model.state_dict().items()}
        trainer.fit(module, datamodule=served)
        after = {k: v.detach().clone() for k, v in module.model.state_dict().items()}
        assert any(not torch.equal(after[k], v) for k, v in before.items() if k.startswith("blocks.stage2."))
        return after, served

    cached, served = trained("auto")
    assert isinstance(served, FeatureDataModule)
    states = served.splits["train"]
    assert isinstance(states, TokenStates) and states.width == 32  # stem and stage1, stored per token
    live, served_live = trained("false")
    assert not isinstance(served_live, FeatureDataModule)
    # the same batches in the same order; only the stored states' float16 rounding differs
    for name, tensor in live.items():  # measured: at most 3.2e-5 apart after 2 epochs
        assert torch.allclose(cached[name], tensor, atol=2e-4), name


@pytest.mark.slow  # a sweep of training runs
def test_a_sweep_over_text_strategies_runs_one_job_each(
    tiny_llama: str, reviews: Path, tmp_path: Path
) -> None:
    import json

    from helpers.cli_inprocess import run_cli_inprocess
    from helpers.cli_runner import assert_ok

    sweep = tmp_path / "sweep"
    result = run_cli_inprocess(
        "train", "-m", f"model.name={tiny_llama}", "model.weights=null", "data=text_csv",
        f"data.root={reviews}", "data.batch_size=8", "trainer=cpu", "trainer.max_epochs=1", "seed=3",
        "strategy=feature_extraction,last_layers", f"data.feature_cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}", cwd=tmp_path,
    )  # fmt: skip
    assert_ok(result)
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0", "1"]
    strategies = {json.loads((sweep / job / "summary.json").read_text())["strategy"] for job in jobs}
    assert strategies == {"feature_extraction", "last_layers"}
    assert all((sweep / job / "checkpoints" / "best.ckpt").is_file() for job in jobs)
