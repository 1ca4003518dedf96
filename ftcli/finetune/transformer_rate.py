"""Whether a plan trains pretrained transformer layers at a rate that usually undoes their pretraining.

Pretrained transformers are fine-tuned at 1e-5 to 1e-4. ftcli's default rate, 1e-3, suits new heads and
convolutional backbones, but ``strategy=full`` on all-MiniLM-L6-v2 at 1e-3 ended at chance on
movie_reviews, where the same run with the layers at 1e-4 reached 84% (docs/text.md, "Learning rates
for transformers"). The check only warns before training: the rate stays the user's choice.
"""

from __future__ import annotations

from ftcli.finetune.freeze_plan import Schedule
from ftcli.model.blocks import HEAD, BlockNet

# above this, a note: 3x the top of the usual range, so that 1e-4 with a mild layer-wise decay stays quiet
RATE_CEILING = 3e-4


def high_rate_note(net: BlockNet, schedule: Schedule, base_lr: float, pretrained: bool) -> str | None:
    """The note for ``inspect`` and ``train`` when pretrained transformer blocks train (whole, not only
    their adapters) above :data:`RATE_CEILING` in some phase; None otherwise."""
    if net.family != "hf" or not pretrained:
        return None
    fastest: dict[str, float] = {}
    for phase in schedule.phases:
        for block in phase.blocks:
            rate = base_lr * block.lr_mult
            if block.name != HEAD and block.trainable and rate > RATE_CEILING:
                fastest[block.name] = max(rate, fastest.get(block.name, 0.0))
    if not fastest:
        return None
    order = [name for name in net.block_names if name in fastest]
    where = order[0] if len(order) == 1 else f"{len(order)} blocks, {order[0]} to {order[-1]}"
    return (
        f"pretrained transformer layers train at up to {max(fastest.values()):.1e} here ({where}); "
        "transformers are usually fine-tuned at 1e-5 to 1e-4, and at 1e-3 strategy=full on MiniLM ended "
        "at chance on movie_reviews. Try optimizer.lr=1e-4, or strategy.backbone_lr_mult=0.1 to keep the "
        "head's rate."
    )
