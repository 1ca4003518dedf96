"""MixUp and CutMix (``mixup.*``): torchvision.transforms.v2 on each training batch, soft targets.

A batch of images and integer labels becomes a batch of mixed images and soft targets (one row per
image, summing to 1); the training loss (training/loss.py) takes the soft targets as they are, still
class-weighted and label-smoothed as configured. Validation and test batches are never mixed.

Off in phases that train only the head (a linear probe on features of mixed images is not what users
expect of a probe) unless ``mixup.during_head_only_phases=true``. Mixing in a head-only phase switches
the feature cache off (features/cache.py), since the frozen blocks then see new inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ftcli.config.mixup import MixOptions
from ftcli.finetune.freeze_plan import Schedule


def mixes_in_cached_phase(options: MixOptions, schedule: Schedule) -> bool:
    """Whether mixing applies to a leading head-only phase (the kind the feature cache serves)."""
    return schedule.first.head_only and options.applies(schedule.first)


def batch_mixer(
    options: MixOptions, num_classes: int
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(images, labels) -> (images, soft targets)``: torchvision's MixUp or CutMix on the batch.

    With both on, each mixed batch gets CutMix with ``switch_prob``, else MixUp; a batch is mixed
    with ``prob``; an unmixed batch still gets its targets as one-hot rows, so the loss sees one kind.
    """
    from torchvision.transforms import v2

    methods, weights = [], []
    if options.mixup_alpha > 0:
        methods.append(v2.MixUp(alpha=options.mixup_alpha, num_classes=num_classes))
        weights.append(1.0 - options.switch_prob if options.cutmix_alpha > 0 else 1.0)
    if options.cutmix_alpha > 0:
        methods.append(v2.CutMix(alpha=options.cutmix_alpha, num_classes=num_classes))
        weights.append(options.switch_prob if options.mixup_alpha > 0 else 1.0)

    def mix(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not methods:
            raise ValueError("batch_mixer needs mixup_alpha or cutmix_alpha above 0")
        if torch.rand(()).item() >= options.prob:
            return images, torch.nn.functional.one_hot(labels, num_classes).to(images.dtype)
        index = int(torch.multinomial(torch.tensor(weights), 1).item())
        mixed, targets = methods[index](images, labels)
        return mixed, targets.to(images.dtype)

    return mix
