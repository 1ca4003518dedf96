"""strategy=auto's shortlist and race: the rule's numbers to candidates, a budget to rungs, a seeded race."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftcli.advice import rule
from ftcli.advice.race import plan_race
from ftcli.advice.shortlist import MAX_CANDIDATES, shortlist
from ftcli.config.schema import check_config
from ftcli.errors import ConfigError

from helpers.measurements import NO_KNOWLEDGE, PEAKED, RISING, measured_numbers


def test_the_shortlist_starts_with_the_rules_pick_then_truncation_then_the_neighbours() -> None:
    decision = rule.decide(measured_numbers(10, PEAKED, NO_KNOWLEDGE, pixels=0.4))
    found = shortlist(decision, MAX_CANDIDATES)
    assert [c.overrides for c in found] == [
        ["strategy=first_layers", "strategy.n=2"],  # the rule's pick
        ["strategy=first_layers", "strategy.n=2", "recipe=truncate", "recipe.n=1"],  # b2 beats the top b3
        ["strategy=lp_ft"],  # one step less of the network trained
        ["strategy=full"],  # one step more
        ["strategy=last_layers", "strategy.n=1"],
    ]
    assert found[0].why.startswith("the rule's pick") and "b2 probes 10.0 points above" in found[1].why
    assert all(c.why for c in found)
    assert [c.label for c in shortlist(decision, 2)] == [
        "first_layers n=2",
        "first_layers n=2 + truncate n=1",
    ]


def test_scratch_is_shortlisted_only_when_the_pretrained_features_gave_no_gain() -> None:
    helps = rule.decide(measured_numbers(500, RISING, NO_KNOWLEDGE, pixels=0.4))
    assert helps.strategy == "full"
    assert "scratch" not in [c.strategy for c in shortlist(helps, MAX_CANDIDATES)]
    useless = rule.decide(measured_numbers(500, NO_KNOWLEDGE, [0.5, 0.6, 0.6, 0.62], pixels=0.4))
    assert [c.strategy for c in shortlist(useless, 3)] == ["scratch", "full", "first_layers"]


def test_first_layers_with_nothing_frozen_is_not_raced_again_as_full() -> None:
    decision = rule.decide(measured_numbers(10, [0.95, 0.7, 0.6, 0.5], NO_KNOWLEDGE, pixels=0.4))
    assert decision.overrides == ["strategy=first_layers", "strategy.n=0"]
    assert [c.label for c in shortlist(decision, MAX_CANDIDATES)] == [
        "first_layers n=0",
        "first_layers n=0 + truncate n=3",
        "lp_ft",
        "last_layers n=1",
        "feature_extraction",
    ]


def test_the_fallback_of_too_few_labels_races_its_neighbours() -> None:
    decision = rule.decide(measured_numbers(2, RISING, NO_KNOWLEDGE, pixels=0.4))
    assert decision.fallback
    assert [c.strategy for c in shortlist(decision, 3)] == ["feature_extraction", "last_layers", "lp_ft"]


@pytest.mark.parametrize(
    ("shortlisted", "max_epochs", "budget", "racing", "milestones", "epochs"),
    [
        (4, 15, None, 4, [2, 4], 12),  # 4 x 2 + 2 x 2 epochs <= 15: auto costs 27/15 = 1.8 runs
        (4, 20, None, 4, [3, 6], 18),
        (5, 15, None, 5, [1, 2, 4], 12),  # 5 -> 3 -> 2 -> 1
        (3, 2, None, 2, [1], 2),  # the default budget takes the first two
        (4, 15, 30, 4, [5, 10], 30),
        (4, 4, 100, 4, [4, 4], 16),  # rungs never pass the schedule's end
    ],
)
def test_the_race_fits_its_budget(shortlisted, max_epochs, budget, racing, milestones, epochs) -> None:
    plan = plan_race(shortlisted, max_epochs, budget)
    assert (plan.candidates, plan.milestones, plan.epochs) == (racing, milestones, epochs)
    assert plan.epochs <= (budget or max_epochs)
    if budget is None:
        assert plan.cost_in_runs <= 2.0


def test_a_race_without_room_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="two candidates need at least 2") as raised:
        plan_race(4, 1, None)
    assert "auto.budget=2" in raised.value.hint and "auto.mode=rule" in raised.value.hint
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs=None"):
        plan_race(4, None, None)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("mode", "fast", "one of race, rule"),
        ("budget", 0, "a whole number >= 1, or null"),
        ("budget", "10min", "a whole number >= 1, or null"),
        ("candidates", 9, "a whole number from 2 to 5"),
    ],
)
def test_bad_auto_keys_name_the_valid_values(key, value, expected) -> None:
    with pytest.raises(ConfigError, match=f"auto.{key}=.*{expected}"):
        check_config({"auto": {"mode": "race", "budget": None, "candidates": 4, key: value}})


@pytest.mark.slow
def test_a_race_is_reproducible_with_a_seed_and_never_tests(compose_train, single_thread, tmp_path) -> None:
    from ftcli.advice.advisor import with_choice
    from ftcli.advice.race import run_race
    from ftcli.advice.shortlist import Candidate
    from ftcli.command_line.config_groups import load_option

    cfg = compose_train(
        "model.name=mobilenet_v3_small", "strategy=auto", "data.per_class=5", "data.classes=[0,1,2]",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false", f"data.feature_cache_dir={tmp_path / 'cache'}",
    )  # fmt: skip
    candidates = [Candidate("feature_extraction", "a"), Candidate("last_layers", "b", {"n": 1})]
    plan = plan_race(len(candidates), 2, None)  # two candidates, one epoch each
    races = [
        run_race(plan, candidates, lambda c: with_choice(cfg, c, load_option), tmp_path / name)
        for name in ("first", "second")
    ]
    first, second = (race.to_dict() for race in races)
    assert [e["val_acc"] for e in first["entrants"]] == [e["val_acc"] for e in second["entrants"]]
    assert first["winner"] == second["winner"] and [len(e["val_acc"]) for e in first["entrants"]] == [1, 1]
    for entrant in first["entrants"]:
        (folder,) = entrant["run_dirs"]
        assert json.loads((Path(folder) / "summary.json").read_text())["test_acc"] is None
