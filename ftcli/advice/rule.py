"""The rule: from measured numbers to one of the four regimes and a strategy. Thresholds live here only.

The seed's four regimes, with "similar" and "much" made measurable (docs/advise.md):

- **much data**: the median class has at least ``MUCH_DATA_PER_CLASS`` labelled training images (texts).
- **similar task**: the pretrained features help (the best block's probe removes at least
  ``TRANSFER_GAIN`` of the errors of the best probe without pretrained knowledge, random-init
  blocks or the raw input (pixels, token counts): a relative measure, since 92% -> 97% on easy
  data is as telling as 50% -> 80% on hard data) *and* the network's last block still fits the
  task (its probe is within ``TOP_DROP`` of the best block's).
  A top block clearly below a lower one has specialised to the source task: the task is dissimilar
  at that depth even when the lower blocks transfer well.

| regime | strategy |
|---|---|
| similar, much | ``full`` |
| similar, little | ``last_layers`` (the last ``LAST_LAYERS_TRAINED`` blocks and the head) |
| dissimilar, little | ``first_layers`` (the first ``FIRST_LAYERS_FROZEN`` blocks frozen) |
| dissimilar, much | ``scratch`` when the pretrained features give no gain, else ``first_layers`` |

Under ``MIN_PER_CLASS_TO_DECIDE`` images in some class the probes cannot be trusted: the rule says
so and falls back to ``feature_extraction`` (it trains only the head, so it cannot overfit the
backbone to a handful of images).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ftcli.advice.measure import Measurements

MIN_PER_CLASS_TO_DECIDE = 3
MUCH_DATA_PER_CLASS = 100
TRANSFER_GAIN = 0.25
TOP_DROP = 0.02
FIRST_LAYERS_FROZEN = 2
LAST_LAYERS_TRAINED = 1
# a lower block beating the top by this much (and by 2 standard errors) makes truncation worth a run
TRUNCATE_DROP = 0.05
FALLBACK = "feature_extraction"

THRESHOLDS = {
    "MIN_PER_CLASS_TO_DECIDE": MIN_PER_CLASS_TO_DECIDE,
    "MUCH_DATA_PER_CLASS": MUCH_DATA_PER_CLASS,
    "TRANSFER_GAIN": TRANSFER_GAIN,
    "TOP_DROP": TOP_DROP,
    "FIRST_LAYERS_FROZEN": FIRST_LAYERS_FROZEN,
    "LAST_LAYERS_TRAINED": LAST_LAYERS_TRAINED,
    "TRUNCATE_DROP": TRUNCATE_DROP,
}


@dataclass
class Decision:
    """The regime, the strategy with its settings, and the reasons in words and numbers."""

    similarity: str  # similar | dissimilar | unknown
    size: str  # little | much
    strategy: str
    strategy_settings: dict[str, Any] = field(default_factory=dict)
    recipe: str | None = None
    recipe_settings: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    fallback: bool = False
    alternatives: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def overrides(self) -> list[str]:
        """The decision as ``ftcli train`` overrides."""
        return overrides_of(self.strategy, self.strategy_settings, self.recipe, self.recipe_settings)

    @property
    def regime(self) -> str:
        return f"{self.similarity} task, {self.size} data"

    def line(self) -> str:
        """The decision in one line (what ``strategy=auto`` prints)."""
        why = self.reasons[-1] if self.reasons else ""
        return f"auto: {self.regime} -> {' '.join(self.overrides)} ({why})"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "overrides": self.overrides, "thresholds": THRESHOLDS}


def overrides_of(
    strategy: str,
    settings: dict[str, Any],
    recipe: str | None = None,
    recipe_settings: dict[str, Any] | None = None,
) -> list[str]:
    """A strategy (and recipe) with its settings as ``ftcli train`` overrides: a decision, a shortlisted
    candidate."""
    items = [f"strategy={strategy}"]
    items += [f"strategy.{key}={value}" for key, value in settings.items()]
    if recipe is not None:
        items.append(f"recipe={recipe}")
        items += [f"recipe.{key}={value}" for key, value in (recipe_settings or {}).items()]
    return items


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def decide(m: Measurements) -> Decision:
    """Apply the rule of this module's docstring to ``m``."""
    size = "much" if m.median_per_class >= MUCH_DATA_PER_CLASS else "little"
    size_reason = (
        f"median {m.median_per_class:g} labelled {m.noun} per class "
        f"{'>=' if size == 'much' else '<'} {MUCH_DATA_PER_CLASS} -> {size} data"
    )
    if m.min_per_class < MIN_PER_CLASS_TO_DECIDE or not m.pretrained or m.raw_input is None:
        why = (
            f"{m.min_per_class} {m.noun} in the smallest class (< {MIN_PER_CLASS_TO_DECIDE})"
            if m.min_per_class < MIN_PER_CLASS_TO_DECIDE
            else "no block could be probed"
        )
        return Decision(
            "unknown",
            size,
            FALLBACK,
            reasons=[
                size_reason,
                f"too noisy to decide: {why}; safe default {FALLBACK} (trains only the head)",
            ],
            fallback=True,
        )

    blocks = [name for name in m.blocks if name in m.pretrained]
    # the best block; on a tie the deeper one (it is the one a head would sit on)
    peak = max(reversed(blocks), key=lambda name: m.pretrained[name].accuracy)
    top = blocks[-1]
    best = m.pretrained[peak].accuracy
    top_acc = m.pretrained[top].accuracy
    baselines = {f"random-init {n}": s.accuracy for n, s in m.random_init.items()}
    baselines[m.raw_input_name] = m.raw_input.accuracy
    baseline_name = max(baselines, key=lambda name: baselines[name])
    baseline_error = 1.0 - baselines[baseline_name]
    gain = 1.0 - (1.0 - best) / baseline_error if baseline_error > 0 else 0.0
    drop = best - top_acc
    helps = gain >= TRANSFER_GAIN
    top_fits = drop <= TOP_DROP
    similarity = "similar" if helps and top_fits else "dissimilar"
    reasons = [
        size_reason,
        f"best block {peak} {_pct(best)} vs best without pretrained knowledge ({baseline_name}) "
        f"{_pct(baselines[baseline_name])}: {100 * gain:.0f}% of its errors removed "
        f"({'>=' if helps else '<'} {100 * TRANSFER_GAIN:g}%)",
        f"top block {top} {_pct(top_acc)}: {100 * drop:.1f} points below the best block "
        f"({'<=' if top_fits else '>'} {100 * TOP_DROP:g}) -> {similarity} task",
    ]
    numbers = {
        "peak_block": peak,
        "peak_accuracy": best,
        "top_block": top,
        "top_accuracy": top_acc,
        "baseline": baseline_name,
        "baseline_accuracy": baselines[baseline_name],
        "transfer_gain": gain,
        "top_drop": drop,
    }
    frozen = min(FIRST_LAYERS_FROZEN, blocks.index(peak))
    numbers["first_layers_n"] = frozen  # never past the best block (the shortlist's first_layers too)
    if similarity == "similar" and size == "much":
        decision = Decision(similarity, size, "full")
        reasons.append("similar task, much data: fine-tune every block")
    elif similarity == "similar":
        decision = Decision(similarity, size, "last_layers", {"n": LAST_LAYERS_TRAINED})
        reasons.append(
            f"similar task, little data: train the last {LAST_LAYERS_TRAINED} block(s) and the head"
        )
    elif size == "much" and not helps:
        decision = Decision(similarity, size, "scratch")
        reasons.append("dissimilar task, much data, no gain from the pretrained features: train from scratch")
    else:
        decision = Decision(similarity, size, "first_layers", {"n": frozen})
        reasons.append(
            f"{'dissimilar task' if size == 'little' else 'much data, but the pretrained features help'}: "
            f"freeze the first {frozen} block(s) ({', '.join(blocks[:frozen]) or 'none'}), train the rest"
        )
    stderr = (m.pretrained[peak].stderr ** 2 + m.pretrained[top].stderr ** 2) ** 0.5
    numbers["top_drop_stderr"] = stderr
    numbers["similarity_uncertain"] = abs(drop - TOP_DROP) < 2 * stderr
    if numbers["similarity_uncertain"]:
        # said, not acted on: the pick stays the rule's (docs/advise.md's validation measures how often)
        reasons.insert(
            3,
            f"uncertain: the top block's gap ({100 * drop:.1f} ± {100 * stderr:.1f} points) is within two "
            f"standard errors of {100 * TOP_DROP:g}; more labelled {m.noun} would make the call firmer",
        )
    decision.reasons = reasons
    decision.numbers = numbers
    if peak != top and drop >= TRUNCATE_DROP and drop > 2 * stderr:
        cut = len(blocks) - 1 - blocks.index(peak)
        numbers["truncate_n"] = cut  # the shortlist races it (shortlist.py)
        decision.alternatives.append(
            f"recipe=truncate recipe.n={cut}: block {peak} probes {100 * drop:.1f} points above {top}"
        )
    return decision
