"""What a search leaves when it ends: a ranked table of its trials, the best trial's ``ftcli train``
command, ``<sweep dir>/optimization_results.yaml`` and PNG plots from Optuna's visualization module
(optimization history; parameter importances with 2 or more completed trials; each trial's
intermediate values, pruned trials included). A plot that fails is a warning: it never fails the
search. For a live view while a search runs: ``optuna-dashboard <storage URL>``.
"""

from __future__ import annotations

import math
import shlex
import warnings
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ftcli.atomic_files import atomic_write_text
from ftcli.ui import console
from ftcli.ui.tables import search_table

RESULTS_FILE = "optimization_results.yaml"
PLOTS = {
    "optimization_history.png": "plot_optimization_history",
    "param_importances.png": "plot_param_importances",
    "intermediate_values.png": "plot_intermediate_values",
}
# overrides that make a search, not a run: left out of the best trial's command
SEARCH_ONLY = ("hparams_search", "hydra/sweeper")


def finish(study: Any, sweep_dir: Path, options: Any) -> Path | None:
    """Print the ranked table and the best command; write the results file and the plots."""
    trials = ranked(study.get_trials(deepcopy=False), options.maximize)
    rows = [_row(t) for t in trials]
    states = _counts(trials)
    title = f"search · {options.study_name} · {options.direction} {options.metric} · " + ", ".join(
        f"{n} {state}" for state, n in states.items()
    )
    console.show(search_table(rows, title))
    plots = write_plots(study, sweep_dir)
    best = _best(study)
    if best is None:
        console.error_console.print(
            f"search: no trial of study {options.study_name} completed.", markup=False
        )
        return None
    command = best_command(best.user_attrs.get("overrides", []))
    record = {
        "name": "optuna",
        "study_name": options.study_name,
        "storage": options.storage,
        "direction": options.direction,
        "metric": options.metric,
        "best_trial": best.number,
        "best_value": float(best.value),
        "best_params": dict(best.params),
        "best_overrides": [o for o in best.user_attrs.get("overrides", []) if not _search_only(o)],
        "best_command": command,
        "best_run_dir": best.user_attrs.get("run_dir"),
        "trials": states,
        "plots": [p.name for p in plots],
    }
    path = atomic_write_text(sweep_dir / RESULTS_FILE, OmegaConf.to_yaml(OmegaConf.create(record)))
    console.show_line(
        f"best trial {best.number}: {options.metric} {best.value:.4f} · {best.user_attrs.get('run_dir')}"
    )
    console.show_line(f"its command: {command}")
    console.show_line(f"results: {path}" + (f" · plots: {', '.join(p.name for p in plots)}" if plots else ""))
    if options.storage is not None:
        console.show_line(f"live view of a running search: optuna-dashboard {options.storage}")
    return path


def ranked(trials: list[Any], maximize: bool) -> list[Any]:
    """Completed trials best first, then pruned ones (by their last value), then failed and running."""
    from optuna.trial import TrialState

    order = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1}

    def key(trial: Any) -> tuple[int, float, int]:
        value = trial.value if trial.value is not None and not math.isnan(trial.value) else None
        score = (-value if maximize else value) if value is not None else math.inf
        return order.get(trial.state, 2), score, trial.number

    return sorted(trials, key=key)


def best_command(overrides: list[str]) -> str:
    """The plain ``ftcli train`` that reruns a trial: its overrides, less those that make a search."""
    return shlex.join(["ftcli", "train", *(o for o in overrides if not _search_only(o))])


def write_plots(study: Any, sweep_dir: Path) -> list[Path]:
    """The PNG plots that apply; a failing one is a warning and is left out."""
    from optuna.trial import TrialState

    from ftcli.runs.plots import headless_pyplot

    completed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    reported = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    wanted = {
        "optimization_history.png": bool(completed),
        "param_importances.png": len(completed) >= 2 and bool(completed[0].params),
        "intermediate_values.png": bool(reported),
    }
    written = []
    for name, function in PLOTS.items():
        if not wanted[name]:
            continue
        try:
            plt = headless_pyplot()
            import optuna.visualization.matplotlib as optuna_plots

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
                axes = getattr(optuna_plots, function)(study)
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            figure.tight_layout()
            figure.savefig(sweep_dir / name, dpi=110)
            plt.close(figure)
            written.append(sweep_dir / name)
        except Exception as exc:  # a plot is a convenience: never fail a finished search on it
            console.error_console.print(
                f"warning: {name} not written ({type(exc).__name__}: {exc})", markup=False, soft_wrap=True
            )
    return written


def _best(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no completed trial
        return None


def _search_only(override: str) -> bool:
    return override.split("=", 1)[0].lstrip("+~") in SEARCH_ONLY


def _counts(trials: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        name = trial.state.name.lower()
        counts[name] = counts.get(name, 0) + 1
    return counts


def _row(trial: Any) -> dict[str, Any]:
    """One table row as plain data (ui.tables knows nothing of Optuna)."""
    state = trial.state.name.lower()
    if state == "pruned" and "pruned_epoch" in trial.user_attrs:
        state = f"pruned at epoch {trial.user_attrs['pruned_epoch']}"
    elif state == "fail" and "error" in trial.user_attrs:
        state = f"failed: {trial.user_attrs['error']}"
    elif state == "fail":
        state = "failed (its worker stopped)"
    params = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()]
    return {
        "trial": trial.number,
        "state": state,
        "value": trial.value,
        "params": params,
    }
