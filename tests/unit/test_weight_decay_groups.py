"""No weight decay on norms, biases, position embeddings and class tokens (freeze_plan.param_groups)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ftcli.finetune.freeze_plan import apply_plan, decay_summary, decays, param_groups
from ftcli.finetune.phases import make_schedule


def full_plan(net):
    plan = make_schedule({"name": "full"}, net).first
    apply_plan(net, plan)
    return plan


def step_with_zero_gradients(net, groups) -> dict[str, torch.Tensor]:
    """One AdamW step where every gradient is 0: only weight decay can move a parameter."""
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)  # biases start at 0, which decay would leave at 0
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    optimizer = torch.optim.AdamW(groups, lr=0.1, weight_decay=0.5)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return before


def test_no_decay_groups_are_untouched_by_weight_decay(tiny_net) -> None:
    net = tiny_net("resnet18")
    groups = param_groups(net, full_plan(net), 0.1)
    before = step_with_zero_gradients(net, groups)
    moved = {name for name, p in net.named_parameters() if not torch.equal(before[name], p)}
    norm_params = {
        f"{module_name}.{n}"
        for module_name, m in net.named_modules()
        if isinstance(m, _BatchNorm)
        for n, _ in m.named_parameters()
    }
    biases = {name for name, _ in net.named_parameters() if name.endswith(".bias")}
    assert norm_params and not moved & (norm_params | biases)  # norms and biases keep their values
    weights = {name for name, p in net.named_parameters() if p.ndim > 1}
    assert moved == weights  # conv and linear weights shrink
    on, off = decay_summary(groups)
    assert on + off == sum(p.numel() for p in net.parameters()) and off > 0


def test_decay_norm_and_bias_puts_the_decay_back_on_everything(tiny_net) -> None:
    net = tiny_net("resnet18")
    groups = param_groups(net, full_plan(net), 0.1, decay_norm_and_bias=True)
    before = step_with_zero_gradients(net, groups)
    assert all(not torch.equal(before[name], p) for name, p in net.named_parameters())
    assert decay_summary(groups)[1] == 0


def test_each_block_keeps_its_rate_in_both_groups(tiny_net) -> None:
    net = tiny_net("resnet18")
    plan = make_schedule({"name": "last_layers", "n": 1, "backbone_lr_mult": 0.1}, net).first
    groups = param_groups(net, plan, 1.0)
    for group in groups:
        assert group["lr"] == plan.lr_mult(group["name"])
    assert {g["name"] for g in groups if g.get("no_decay")} == set(net.block_names)


def test_embeddings_and_tokens_get_no_decay() -> None:
    matrix = nn.Parameter(torch.zeros(3, 4))
    for name in ("encoder.pos_embedding", "class_token", "pos_embed", "cls_token", "blocks.0.norm1.weight"):
        assert not decays(name, matrix if "norm" not in name else nn.Parameter(torch.zeros(4)))
    assert decays("blocks.0.attn.qkv.weight", matrix)
