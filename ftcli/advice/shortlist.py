"""The shortlist: the 2-5 strategies worth racing (``strategy=auto``, ``auto.mode=race``), each with why.

The rule (``rule.py``) names one strategy; with few labels its probes are noisy and it can miss
(docs/advise.md). The shortlist keeps the rule's pick first and adds what the probes make plausible:

1. the rule's pick;
2. truncation at the best block, when a lower block probes clearly above the top one (the rule's
   "worth a run": the pick's strategy with ``recipe=truncate``);
3. the pick's neighbours on :data:`LADDER` (how much of the pretrained network trains), nearest
   first, the one that trains less before the one that trains more; ``scratch`` only when the
   pretrained features gave no gain (else it throws away what the probes measured).

Order matters: the race breaks a tie in favour of the earlier candidate (the rule's pick first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ftcli.advice.rule import FIRST_LAYERS_FROZEN, LAST_LAYERS_TRAINED, TRANSFER_GAIN, Decision, overrides_of

# from "trains least of the pretrained network" to "trains most" (scratch: none of it is kept)
LADDER = ("feature_extraction", "last_layers", "lp_ft", "first_layers", "full", "scratch")
MIN_CANDIDATES, DEFAULT_CANDIDATES, MAX_CANDIDATES = 2, 4, 5  # auto.candidates
WHAT = {
    "feature_extraction": "only the head trains: it cannot overfit the backbone to few labels",
    "last_layers": "the top block and the head train, the generic blocks stay",
    "lp_ft": "the head learns on frozen features first, then every block fine-tunes at a lower rate",
    "first_layers": "the first blocks (generic edges and textures) stay frozen, the rest adapts",
    "full": "every block fine-tunes: the most room to adapt",
    "scratch": "random init: the pretrained features gave no gain over the baselines",
}


@dataclass(frozen=True)
class Candidate:
    """One strategy (and recipe) to race, as ``ftcli train`` overrides, and why it is on the list."""

    strategy: str
    why: str
    strategy_settings: dict[str, Any] = field(default_factory=dict)
    recipe: str | None = None
    recipe_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def overrides(self) -> list[str]:
        return overrides_of(self.strategy, self.strategy_settings, self.recipe, self.recipe_settings)

    @property
    def label(self) -> str:
        """Short: ``first_layers n=2``, ``last_layers n=1 + truncate n=1``."""
        parts = [self.strategy, *(f"{k}={v}" for k, v in self.strategy_settings.items())]
        if self.recipe is not None:
            parts += ["+", self.recipe, *(f"{k}={v}" for k, v in self.recipe_settings.items())]
        return " ".join(parts)

    @property
    def trains(self) -> tuple[Any, ...]:
        """What the candidate trains: ``first_layers`` with nothing frozen trains what ``full`` does."""
        if self.strategy == "first_layers" and self.strategy_settings.get("n") == 0:
            return ("full", (), self.recipe, tuple(self.recipe_settings.items()))
        settings = tuple(self.strategy_settings.items())
        return (self.strategy, settings, self.recipe, tuple(self.recipe_settings.items()))

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "overrides": self.overrides, "why": self.why}


def shortlist(decision: Decision, size: int = 4) -> list[Candidate]:
    """The first ``size`` candidates of the module docstring's order, no two that train the same."""
    numbers = decision.numbers
    first_n = int(numbers.get("first_layers_n", FIRST_LAYERS_FROZEN))
    settings = {"last_layers": {"n": LAST_LAYERS_TRAINED}, "first_layers": {"n": first_n}}
    pick = Candidate(
        decision.strategy,
        f"the rule's pick: {decision.reasons[-1] if decision.reasons else decision.regime}",
        dict(decision.strategy_settings),
        decision.recipe,
        dict(decision.recipe_settings),
    )
    found = [pick]
    cut = numbers.get("truncate_n")
    if cut:
        drop = 100 * float(numbers.get("top_drop", 0.0))
        found.append(
            Candidate(
                pick.strategy,
                f"block {numbers.get('peak_block')} probes {drop:.1f} points above the top block "
                f"{numbers.get('top_block')}: cut the {cut} block(s) after it",
                dict(pick.strategy_settings),
                "truncate",
                {"n": cut},
            )
        )
    no_gain = float(numbers.get("transfer_gain", 1.0)) < TRANSFER_GAIN
    allowed = [s for s in LADDER if s != "scratch" or no_gain]
    at = LADDER.index(pick.trains[0]) if pick.trains[0] in LADDER else 0
    for name in sorted(allowed, key=lambda s: (abs(LADDER.index(s) - at), LADDER.index(s) > at)):
        relation = "less" if LADDER.index(name) < at else "more"
        candidate = Candidate(
            name,
            f"{WHAT[name]} (trains {relation} of the network than the rule's pick)",
            dict(settings.get(name, {})),
        )
        if all(c.trains != candidate.trains for c in found):
            found.append(candidate)
    return found[:size]
