"""``ftcli <command> [overrides]``: a thin dispatcher that imports no torch for ``--help`` and ``ls``.

``train`` and ``inspect`` are Hydra apps run as modules (runpy), so every Hydra flag works
(``-m``, ``--cfg job``, ``--info``, ``--config-dir``) and Lightning's DDP launcher can re-run the
same command line for extra ranks.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from ftcli.paths import GROUPS, config_dir, config_dir_flags

COMMANDS = {
    "train": "compose with Hydra, fit, test, write checkpoints and a summary",
    "inspect": "dry run: what train would build, freeze and optimise (same overrides as train);\n"
    "           `inspect ckpt=PATH`: where a checkpoint stands (epoch, phase, classes)",
    "ls": "every option of every config group, one line each (--config-dir DIR adds yours)",
    "eval": "metrics of a checkpoint on a split: accuracy, F1, per class, confusion matrix",
    "predict": "classify images (folder, glob or file) with a checkpoint -> predictions.csv",
    "export": "a checkpoint as ONNX or TorchScript, checked against PyTorch, with its preprocessing",
    "report": "compare finished runs (a sweep folder, run folders): table, CSV, bar chart",
}
# Commands that read a finished run back: plain key=value parsers (ftcli.options), not Hydra apps.
READERS = {
    "eval": "ftcli.evaluate",
    "predict": "ftcli.predict",
    "export": "ftcli.export",
    "report": "ftcli.report",
}

HELP = """\
ftcli: fine-tune and transfer pretrained vision networks from composable configs.

usage: ftcli <command> [group=option ...] [key=value ...] [hydra flags]   (ftcli <command> --help)

commands:
{commands}

config groups (`ftcli ls` lists the options):
  {groups}

examples:
  ftcli train model=resnet50 strategy=last_layers data=imagefolder data.root=~/trucks
  ftcli train -m model=resnet18,mobilenet_v3_large strategy=feature_extraction,full
  ftcli inspect model=convnext_tiny strategy=first_layers strategy.n=2
  ftcli train --cfg job           # print the composed config and exit
  ftcli train --config-dir ./my_configs strategy=my_strategy
  ftcli eval ckpt=outputs/<date>/<time>/checkpoints/best.ckpt
  ftcli predict ckpt=.../best.ckpt inputs=photos/ topk=3
  ftcli export ckpt=.../best.ckpt format=onnx
  ftcli report multirun/<date>/<time> sort=test_acc

Hydra flags: -m/--multirun, --cfg job|hydra|all, --info, --config-dir DIR, --help (per command).
Errors print a short message and exit 2; FTCLI_DEBUG=1 shows the traceback.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ftcli`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help())
        return 0
    command, rest = args[0], args[1:]
    if command == "ls":
        return _ls(rest)
    if command in READERS:
        return _run_reader(READERS[command], rest)
    if command not in ("train", "inspect"):
        print(f"error: unknown command '{command}'. Valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        print("Run `ftcli --help` for usage.", file=sys.stderr)
        return 2
    from ftcli.errors import FtcliError

    try:
        check_group_choices(rest)
    except FtcliError as err:
        from ftcli import display

        display.error(err)
        return err.exit_code
    if command == "inspect" and any(arg.startswith("ckpt=") for arg in rest):
        return _inspect_checkpoint(rest)
    if command == "inspect":
        rest = [
            *rest,
            "hydra.output_subdir=null",
            "hydra.run.dir=.",
            "hydra/job_logging=disabled",
            "~hydra.callbacks.run_dir_guard",  # inspect writes nothing, wherever it runs
        ]
    return _run_hydra_app(f"ftcli.{command}", overrides_first(rest))


def _run_reader(module: str, args: list[str]) -> int:
    """Run a reader command's ``main(args)``; a user error becomes a short message and its exit code."""
    import importlib

    from ftcli import display
    from ftcli.errors import FtcliError
    from ftcli.jobs import debug

    try:
        return importlib.import_module(module).main(args)
    except FtcliError as err:
        if debug():
            raise
        display.error(err)
        return err.exit_code


def _run_hydra_app(module: str, args: list[str]) -> int:
    """Run a Hydra app module as ``__main__`` with ``args``; report the failed jobs of a sweep."""
    from ftcli import jobs

    sys.argv = [module, *args]
    # Hydra then raises its own errors (bad overrides, clashing flags) instead of printing and exiting 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except Exception as exc:
        from ftcli.usage import usage_error

        err = usage_error(exc)
        if err is None or jobs.debug():
            raise
        from ftcli import display

        display.error(err)
        return err.exit_code
    if jobs.JOB_DIRS:
        _print_sweep(jobs.JOB_DIRS)
    if jobs.FAILURES:
        from rich.markup import escape

        from ftcli import display

        for job_dir, message in jobs.FAILURES:
            line = f"{job_dir}: {message.splitlines()[0]}"
            display.error_console.print(f"[red]failed[/red] {escape(line)}", highlight=False, soft_wrap=True)
        display.error_console.print(f"{len(jobs.FAILURES)} of {len(jobs.JOB_DIRS)} jobs failed.")
        return 2
    return 0


def _inspect_checkpoint(args: list[str]) -> int:
    from ftcli import display, jobs
    from ftcli.errors import ConfigError, FtcliError
    from ftcli.inspect import inspect_checkpoint

    try:
        if len(args) != 1:
            raise ConfigError("`ftcli inspect ckpt=PATH` takes the checkpoint path and nothing else.")
        inspect_checkpoint(Path(args[0].split("=", 1)[1]).expanduser())
    except FtcliError as err:
        if jobs.debug():
            raise
        display.error(err)
        return err.exit_code
    return 0


def _print_sweep(job_dirs: list[Path]) -> None:
    from ftcli import display, summary

    summaries = [s for s in (summary.load(d) for d in job_dirs) if s is not None]
    if summaries:
        sweep_dir = Path(job_dirs[0]).parent
        display.show(display.sweep_table(summaries, f"sweep · {sweep_dir} · {len(summaries)} runs"))


# Hydra flags that take a value; `--info` takes one only when it is one of Hydra's info topics.
VALUE_FLAGS = (
    "--config-dir",
    "-cd",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--cfg",
    "-c",
    "--package",
    "-p",
)
INFO_TOPICS = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def overrides_first(args: list[str]) -> list[str]:
    """All overrides, then all flags: Hydra's parser only takes overrides as one contiguous run.

    So ``ftcli train model=resnet50 -m strategy=full,scratch`` works like ``-m`` written first.
    """
    overrides: list[str] = []
    flags: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        takes_value = arg in VALUE_FLAGS or (
            arg == "--info" and index + 1 < len(args) and args[index + 1] in INFO_TOPICS
        )
        if arg.startswith("-") and takes_value and index + 1 < len(args):
            flags += [arg, args[index + 1]]
            index += 2
            continue
        (flags if arg.startswith("-") else overrides).append(arg)
        index += 1
    return [*overrides, *flags]


def user_config_dirs(args: list[str]) -> list[Path]:
    """The folders that ``--config-dir`` flags add to the config search path."""
    dirs = []
    tokens = iter(config_dir_flags(args))
    for token in tokens:
        value = token.split("=", 1)[1] if token.startswith("--config-dir=") else next(tokens)
        dirs.append(Path(value).expanduser())
    return dirs


def group_options(extra_dirs: list[Path] | None = None) -> dict[str, dict[str, str]]:
    """Every option of every config group: {group: {option: one-line description}}."""
    found: dict[str, dict[str, str]] = {}
    for root in [config_dir(), *(extra_dirs or [])]:
        for group in GROUPS:
            folder = root / group
            if folder.is_dir():
                for path in sorted(folder.glob("*.yaml")):
                    found.setdefault(group, {})[path.stem] = _description(path)
    return found


def check_group_choices(args: list[str]) -> None:
    """Fail early, listing the valid names, when ``group=option`` names an option that does not exist."""
    from ftcli.errors import unknown_name

    options = group_options(user_config_dirs(args))
    for arg in args:
        if "=" not in arg or arg.startswith("-"):
            continue
        key, value = arg.split("=", 1)
        group = key.lstrip("+~")
        if group not in GROUPS or "(" in value or value in ("null", ""):
            continue
        for choice in value.split(","):
            if choice not in options.get(group, {}):
                raise unknown_name(group, choice, list(options.get(group, {})), key=group)


def _description(path: Path) -> str:
    """The first comment line of a config file."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and not line.startswith("# @"):
            return line.lstrip("# ").strip()
    return ""


def _ls(args: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ftcli config groups", title_justify="left")
    for column in ("group", "option", "description"):
        table.add_column(column)
    for group, options in group_options(user_config_dirs(args)).items():
        for index, (option, description) in enumerate(options.items()):
            table.add_row(group if index == 0 else "", option, description)
        table.add_section()
    Console().print(table)
    return 0


def _help() -> str:
    commands = "\n".join(f"  {name:<8} {text}" for name, text in COMMANDS.items())
    groups = "  ".join(f"{g}=" for g in GROUPS if g != "experiment") + "  experiment="
    return HELP.format(commands=commands, groups=groups)


if __name__ == "__main__":
    sys.exit(main())
