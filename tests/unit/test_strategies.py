"""Freeze plans under a real optimizer step: what trains, what stays bit-identical, what BN does."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ftcli.errors import ConfigError
from ftcli.finetune.freeze_plan import BlockPlan, FreezePlan, Schedule, apply_plan, param_groups
from ftcli.finetune.phases import make_plan
from ftcli.finetune.strategies import STRATEGIES
from ftcli.model.blocks import HEAD, BlockNet
from ftcli.pipeline import plan_run
from ftcli.training.lightning_module import FineTuneModule

pytestmark = pytest.mark.usefixtures("single_thread")

RESNET_BLOCKS = ["stem", "stage1", "stage2", "stage3", "stage4", HEAD]
BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
NUM_CLASSES = 3

# case id -> (strategy config, the blocks that must train on resnet18)
STRATEGY_CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "feature_extraction": ({"name": "feature_extraction"}, {HEAD}),
    "last_layers_n1": ({"name": "last_layers", "n": 1}, {"stage4", HEAD}),
    "last_layers_n2": ({"name": "last_layers", "n": 2}, {"stage3", "stage4", HEAD}),
    "first_layers_n2": ({"name": "first_layers", "n": 2}, {"stage2", "stage3", "stage4", HEAD}),
    "full": ({"name": "full"}, set(RESNET_BLOCKS)),
    "scratch": ({"name": "scratch", "pretrained": False}, set(RESNET_BLOCKS)),
}


# --- helpers ------------------------------------------------------------------------------------


def planned(net: BlockNet, cfg: dict[str, Any]) -> FreezePlan:
    """make_plan + apply_plan, as pipeline.plan_run does."""
    plan = make_plan(cfg, net)
    apply_plan(net, plan)
    return plan


def make_optimizer(net: BlockNet, plan: FreezePlan, name: str, lr: float = 1e-2) -> torch.optim.Optimizer:
    groups = param_groups(net, plan, lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=0.01)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)


def random_batch(num_classes: int = NUM_CLASSES, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, 32, 32, generator=generator)
    y = torch.randint(0, num_classes, (4,), generator=generator)
    return x, y


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of every parameter and buffer, by name."""
    return {name: t.detach().clone() for name, t in module.state_dict().items()}


def train_step(net: BlockNet, optimizer: torch.optim.Optimizer, num_classes: int = NUM_CLASSES) -> None:
    """One real step in train mode, as Lightning runs it."""
    net.train()
    x, y = random_batch(num_classes)
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    optimizer.step()


def changed_names(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, value in before.items() if not torch.equal(value, after[name])}


def bn_buffer_names(block: nn.Module) -> list[str]:
    names = []
    for module_name, module in block.named_modules():
        if isinstance(module, _BatchNorm):
            names += [f"{module_name}.{buffer}" for buffer in BN_BUFFERS]
    return names


def block_state(block_name: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    prefix = f"blocks.{block_name}."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def params_of(net: BlockNet, block_names: list[str]) -> set[str]:
    return {f"blocks.{b}.{name}" for b in block_names for name, _ in net.blocks[b].named_parameters()}


def grad_enabled_per_block(net: BlockNet, x: torch.Tensor) -> tuple[dict[str, bool], dict[str, bool]]:
    """Forward once; per block: was autograd on inside it, and does its output require grad."""
    grad_enabled: dict[str, bool] = {}
    output_requires_grad: dict[str, bool] = {}
    handles = []
    for name, block in net.blocks.items():

        def pre_hook(module: nn.Module, args: Any, name: str = name) -> None:
            grad_enabled[name] = torch.is_grad_enabled()

        def hook(module: nn.Module, args: Any, output: torch.Tensor, name: str = name) -> None:
            output_requires_grad[name] = output.requires_grad

        handles += [block.register_forward_pre_hook(pre_hook), block.register_forward_hook(hook)]
    try:
        net(x)
    finally:
        for handle in handles:
            handle.remove()
    return grad_enabled, output_requires_grad


# --- one real optimizer step per strategy ---------------------------------------------------------


@pytest.mark.parametrize("optimizer_name", ["adamw", "sgd"])
@pytest.mark.parametrize("bn", ["frozen", "train"])
@pytest.mark.parametrize("case", list(STRATEGY_CASES))
def test_one_step_changes_exactly_the_trainable_blocks(tiny_net, case, bn, optimizer_name) -> None:
    cfg, expected_trainable = STRATEGY_CASES[case]
    net = tiny_net("resnet18", num_classes=NUM_CLASSES)
    plan = planned(net, {**cfg, "bn": bn})
    assert set(plan.trainable_blocks) == expected_trainable
    assert net.block_names == RESNET_BLOCKS

    optimizer = make_optimizer(net, plan, optimizer_name)
    before = snapshot(net)
    train_step(net, optimizer)
    after = snapshot(net)

    for block in plan.blocks:
        module = net.blocks[block.name]
        old, new = block_state(block.name, before), block_state(block.name, after)
        param_names = [name for name, _ in module.named_parameters()]
        bn_names = bn_buffer_names(module)
        if block.trainable:
            assert all(p.requires_grad for p in module.parameters()), block.name
            moved = [n for n in param_names if not torch.equal(old[n], new[n])]
            assert moved, f"trainable block {block.name} did not change"
            if optimizer_name == "adamw":  # Adam moves every weight with a gradient by ~lr
                with_grad = [n for n, p in module.named_parameters() if p.grad.abs().max() > 1e-6]
                assert set(with_grad) <= set(moved), f"{block.name}: {set(with_grad) - set(moved)}"
            for name in bn_names:  # trainable BN always updates its statistics
                if not name.endswith("num_batches_tracked"):
                    assert not torch.equal(old[name], new[name]), f"{block.name}.{name}"
        else:
            for name, param in module.named_parameters():
                assert not param.requires_grad, f"{block.name}.{name}"
                assert param.grad is None, f"{block.name}.{name}"
                assert torch.equal(old[name], new[name]), f"frozen {block.name}.{name} changed"
            for name in bn_names:
                if bn == "frozen":
                    assert torch.equal(old[name], new[name]), f"frozen BN stat {block.name}.{name} changed"
                else:
                    assert not torch.equal(old[name], new[name]), f"bn=train: {block.name}.{name} fixed"


def test_frozen_prefix_runs_without_autograd(tiny_net) -> None:
    for case, (cfg, _) in STRATEGY_CASES.items():
        net = tiny_net("resnet18")
        plan = planned(net, cfg)
        leading_frozen = next(i for i, b in enumerate(plan.blocks) if b.trainable)
        assert plan.no_grad_prefix == net.no_grad_prefix == leading_frozen, case

        x = random_batch()[0].requires_grad_(True)  # so only no_grad can stop the graph
        net.train()
        grad_enabled, output_requires_grad = grad_enabled_per_block(net, x)
        for index, name in enumerate(net.block_names):
            in_prefix = index < plan.no_grad_prefix
            assert grad_enabled[name] is not in_prefix, f"{case}: {name}"
            assert output_requires_grad[name] is not in_prefix, f"{case}: {name}"


def test_frozen_middle_block_still_passes_gradients_to_earlier_blocks(tiny_net) -> None:
    # The strategies only freeze a prefix, so a frozen middle block needs a hand-built plan.
    net = tiny_net("resnet18")
    plan = FreezePlan(
        "custom",
        True,
        tuple(
            BlockPlan(
                name,
                name != "stage2",
                0.0 if name == "stage2" else 1.0,
                "frozen" if name == "stage2" else "train",
            )
            for name in net.block_names
        ),
    )
    apply_plan(net, plan)
    assert plan.no_grad_prefix == net.no_grad_prefix == 0

    grad_enabled, output_requires_grad = grad_enabled_per_block(net, random_batch()[0])
    assert grad_enabled["stage2"] and output_requires_grad["stage2"]

    optimizer = make_optimizer(net, plan, "adamw")
    before = snapshot(net)
    train_step(net, optimizer)
    after = snapshot(net)
    for name in ("stem", "stage1"):
        grads = [p.grad for p in net.blocks[name].parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads), name
    assert all(p.grad is None for p in net.blocks["stage2"].parameters())
    changed = changed_names(before, after)
    assert any(n.startswith("blocks.stem.") for n in changed)
    assert not params_of(net, ["stage2"]) & changed
    for name in bn_buffer_names(net.blocks["stage2"]):  # frozen BN stats kept
        assert torch.equal(before[f"blocks.stage2.{name}"], after[f"blocks.stage2.{name}"])


def test_frozen_bn_stays_in_eval_mode_when_train_is_called_again(tiny_net) -> None:
    net = tiny_net("resnet18")
    plan = planned(net, {"name": "last_layers", "n": 1, "bn": "frozen"})
    schedule = Schedule("last_layers", True, (plan,))
    module = FineTuneModule(
        net, schedule, {"name": "adamw", "lr": 1e-3}, {"name": "none"}, {"num_classes": 3}
    )
    for _ in range(2):  # Lightning calls train() at the start of every epoch, eval() for validation
        module.eval()
        module.train()
        for block in plan.blocks:
            for bn in (m for m in net.blocks[block.name].modules() if isinstance(m, _BatchNorm)):
                assert bn.training is block.trainable, block.name

    before = snapshot(net)
    train_step(net, make_optimizer(net, plan, "sgd"))
    after = snapshot(net)
    for name in ("stem", "stage1", "stage2", "stage3"):
        for buffer in bn_buffer_names(net.blocks[name]):
            assert torch.equal(before[f"blocks.{name}.{buffer}"], after[f"blocks.{name}.{buffer}"])


def test_bn_train_policy_keeps_frozen_blocks_bn_in_train_mode(tiny_net) -> None:
    net = tiny_net("resnet18")
    plan = planned(net, {"name": "feature_extraction", "bn": "train"})
    net.eval()
    net.train()
    assert all(m.training for m in net.modules() if isinstance(m, _BatchNorm))
    assert plan.frozen_bn_blocks == frozenset()
    assert {b.bn for b in plan.blocks if b.name != HEAD} == {"train"}


# --- param groups -------------------------------------------------------------------------------


def test_param_groups_one_per_block_frozen_included_with_lr_zero(tiny_net) -> None:
    net = tiny_net("resnet18")
    plan = planned(net, {"name": "last_layers", "n": 1})
    # one group per block when every parameter decays (the no-decay split: test_weight_decay_groups.py)
    groups = param_groups(net, plan, base_lr=0.5, decay_norm_and_bias=True)
    assert [g["name"] for g in groups] == RESNET_BLOCKS
    for group in groups:
        assert group["lr"] == 0.5 * plan.lr_mult(group["name"])
        assert group["params"] == list(net.blocks[group["name"]].parameters())
    assert {g["name"]: g["lr"] for g in groups if g["lr"] == 0} == {
        "stem": 0,
        "stage1": 0,
        "stage2": 0,
        "stage3": 0,
    }
    # every parameter sits in exactly one group
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in net.parameters())


def test_param_groups_are_the_same_whatever_is_frozen(tiny_net) -> None:
    # Unfreezing later must not need new groups (docs/ARCHITECTURE.md: groups are created up front).
    net = tiny_net("resnet18")
    frozen = param_groups(net, planned(net, {"name": "feature_extraction"}), 1e-3)
    full = param_groups(net, planned(net, {"name": "full"}), 1e-3)
    assert [g["name"] for g in frozen] == [g["name"] for g in full]
    assert [list(map(id, g["params"])) for g in frozen] == [list(map(id, g["params"])) for g in full]


def test_blocks_without_parameters_get_no_group(tiny_net) -> None:
    net = tiny_net("resnet18")
    net.blocks["stage1"] = nn.Identity()  # a parameter-free block
    plan = planned(net, {"name": "full"})
    assert "stage1" not in [g["name"] for g in param_groups(net, plan, 1e-3)]


@pytest.mark.parametrize("strategy", ["full", "last_layers", "first_layers"])
def test_backbone_lr_mult_scales_pretrained_trainable_blocks(tiny_net, strategy) -> None:
    net = tiny_net("resnet18")
    plan = planned(net, {"name": strategy, "n": 2, "backbone_lr_mult": 0.1})
    lrs = {g["name"]: g["lr"] for g in param_groups(net, plan, base_lr=1e-2)}
    assert lrs[HEAD] == pytest.approx(1e-2)
    for block in plan.blocks:
        if block.name == HEAD:
            continue
        expected = 0.1 * lrs[HEAD] if block.trainable else 0.0
        assert lrs[block.name] == pytest.approx(expected), block.name


# --- bad configs --------------------------------------------------------------------------------


def test_unknown_strategy_lists_the_valid_names(tiny_net) -> None:
    net = tiny_net("resnet18")
    with pytest.raises(ConfigError) as err:
        make_plan({"name": "freeze_some"}, net)
    text = str(err.value)
    assert "freeze_some" in text and "strategy.name" in text
    for valid in STRATEGIES:
        assert valid in text


@pytest.mark.parametrize("strategy", ["last_layers", "first_layers"])
@pytest.mark.parametrize("n", [-1, 6, 99, "2", 1.5, True])
def test_bad_strategy_n_raises_config_error(tiny_net, strategy, n) -> None:
    net = tiny_net("resnet18")
    with pytest.raises(ConfigError) as err:
        make_plan({"name": strategy, "n": n}, net)
    text = str(err.value)
    assert f"strategy.n={n}" in text
    assert "0 to 5" in text and "stage4" in text  # the valid range and the block names


@pytest.mark.parametrize("strategy", ["last_layers", "first_layers"])
def test_strategy_n_may_cover_every_backbone_block(tiny_net, strategy) -> None:
    net = tiny_net("resnet18")
    plan = make_plan({"name": strategy, "n": 5}, net)
    expected = set(RESNET_BLOCKS) if strategy == "last_layers" else {HEAD}
    assert set(plan.trainable_blocks) == expected


def test_unknown_bn_policy_raises_config_error(tiny_net) -> None:
    net = tiny_net("resnet18")
    with pytest.raises(ConfigError) as err:
        make_plan({"name": "full", "bn": "sometimes"}, net)
    text = str(err.value)
    assert "sometimes" in text and "frozen" in text and "train" in text


@pytest.mark.parametrize("mult", [-0.1, "fast", None])
def test_bad_backbone_lr_mult_raises_config_error(tiny_net, mult) -> None:
    net = tiny_net("resnet18")
    with pytest.raises(ConfigError, match="backbone_lr_mult"):
        make_plan({"name": "full", "backbone_lr_mult": mult}, net)


# --- inspect shows what training does ------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("last_layers", {"stage4", HEAD}), ("first_layers", {"stage2", "stage3", "stage4", HEAD})],
)
def test_inspect_trainable_set_equals_what_a_real_step_changes(compose_train, strategy, expected) -> None:
    torch.manual_seed(0)
    cfg = compose_train(f"strategy={strategy}", "optimizer=adamw", "scheduler=none")
    run_plan = plan_run(cfg)  # what `ftcli inspect` builds and prints
    net, plan = run_plan.net, run_plan.plan
    assert set(plan.trainable_blocks) == expected
    shown_trainable = params_of(net, plan.trainable_blocks)
    requires_grad = {name for name, p in net.named_parameters() if p.requires_grad}
    assert shown_trainable == requires_grad

    # what `ftcli train` runs: the module's own optimizer (scheduler=none needs no Trainer)
    num_classes = run_plan.datamodule.num_classes
    module = run_plan.module()
    optimizer = module.configure_optimizers()["optimizer"]
    # per block in order: its decayed group, then its no-decay group (norms, biases)
    assert list(dict.fromkeys(g["name"] for g in optimizer.param_groups)) == net.block_names
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    module.train()
    x, y = random_batch(num_classes)
    optimizer.zero_grad()
    module.criterion(module(x), y).backward()
    optimizer.step()
    changed = {name for name, p in net.named_parameters() if not torch.equal(before[name], p)}
    assert changed == shown_trainable
