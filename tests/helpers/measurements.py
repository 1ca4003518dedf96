"""Made-up advisor measurements: the rule's and the shortlist's tests feed them numbers, not probes."""

from __future__ import annotations

from ftcli.advice.measure import Measurements
from ftcli.advice.probes import ProbeScore

RISING = [0.5, 0.7, 0.85, 0.95]  # the top block is the best: its features fit
PEAKED = [0.5, 0.7, 0.95, 0.85]  # a lower block beats the top by 10 points
NO_KNOWLEDGE = [0.5, 0.6, 0.6, 0.6]  # random-init blocks


def measured_numbers(
    per_class: int, pretrained: list[float], random_init: list[float], pixels: float
) -> Measurements:
    """Two classes of ``per_class`` samples, a probe accuracy per block (± 0.5 points), the raw input's."""
    blocks = [f"b{i}" for i in range(len(pretrained))]
    score = lambda a: ProbeScore(a, 0.005, 5)  # noqa: E731
    return Measurements(
        model="m",
        weights="w",
        data="d",
        classes=["x", "y"],
        per_class={"x": per_class, "y": per_class},
        input_size="32x32 px",
        samples_probed=2 * per_class,
        blocks=blocks,
        pretrained={b: score(a) for b, a in zip(blocks, pretrained, strict=True)},
        random_init={b: score(a) for b, a in zip(blocks, random_init, strict=True)},
        raw_input=score(pixels),
    )
