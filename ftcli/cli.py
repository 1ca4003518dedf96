"""``ftcli <command> [overrides]``: the dispatcher. It picks the command's module and runs it.

``train``, ``inspect``, ``advise`` and ``lrfind`` are Hydra apps run as modules (runpy), so every
Hydra flag works (``-m``, ``--cfg job``, ``--info``, ``--config-dir``) and Lightning's DDP launcher
can re-run the same command line for extra ranks. The other commands take ``key=value`` arguments and expose
``main(args) -> exit code``. Every command ends in the one error boundary
(``ftcli.command_line.error_boundary``).
Imports no torch, so ``ftcli --help`` and ``ftcli ls`` stay instant; commands are named by module
path here, never imported by name, so no command depends on this file.
"""

from __future__ import annotations

import importlib
import os
import runpy
import sys

from ftcli.command_line.config_groups import GROUPS, check_group_choices
from ftcli.command_line.error_boundary import guard
from ftcli.command_line.hydra_args import overrides_first
from ftcli.hydra_hooks.sweep_plugins import check_plugins

# verb: (module, what it does)
COMMANDS = {
    "train": ("ftcli.commands.train", "compose with Hydra, fit, test, write checkpoints and a summary"),
    "inspect": (
        "ftcli.commands.inspect_run",
        "dry run: what train would build, freeze and optimise (same overrides as train);\n"
        "           `inspect ckpt=PATH`: where a checkpoint stands (epoch, phase, classes)",
    ),
    "advise": (
        "ftcli.commands.advise",
        "which strategy fits this data: a linear probe on every block, the regime, the train command\n"
        "           (same overrides as train; `train strategy=auto` trains with its pick)",
    ),
    "lrfind": (
        "ftcli.commands.lrfind",
        "learning-rate range test of the first phase: suggested lr, curve PNG, the train command\n"
        "           (same overrides as train, plus lrfind.min_lr/max_lr/steps/phase)",
    ),
    "ls": (
        "ftcli.commands.ls",
        "every option of every config group, one line each (--config-dir DIR adds yours)",
    ),
    "eval": (
        "ftcli.commands.evaluate",
        "metrics of a checkpoint on a split: accuracy, F1, per class, confusion matrix",
    ),
    "predict": (
        "ftcli.commands.predict",
        "classify images (folder, glob, file) or texts (.txt, .csv, .jsonl) with a checkpoint",
    ),
    "export": (
        "ftcli.commands.export",
        "a checkpoint as ONNX or TorchScript, checked against PyTorch, with its preprocessing",
    ),
    "report": (
        "ftcli.commands.report",
        "compare finished runs (a sweep folder, run folders): table, CSV, bar chart",
    ),
}
# Hydra apps: composed from configs/train.yaml, run as modules. The rest are `main(args)` commands.
HYDRA_APPS = ("train", "inspect", "advise", "lrfind")
# `inspect` writes nothing, wherever it runs.
INSPECT_OVERRIDES = [
    "hydra.output_subdir=null",
    "hydra.run.dir=.",
    "hydra/job_logging=disabled",
    "~hydra.callbacks.run_dir_guard",
]

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
  ftcli advise data=imagefolder data.root=~/trucks    # which strategy fits? measured
  ftcli train -m hparams_search=finetune hydra.sweeper.n_trials=30   # Optuna search
  ftcli train -m hydra/launcher=slurm trainer.devices=4 strategy=full,lp_ft   # SLURM jobs
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
    if command not in COMMANDS:
        print(f"error: unknown command '{command}'. Valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        print("Run `ftcli --help` for usage.", file=sys.stderr)
        return 2
    if command == "inspect" and any(arg.startswith("ckpt=") for arg in rest):
        return guard(
            lambda: importlib.import_module(COMMANDS[command][0]).checkpoint_main(rest), arguments=rest
        )
    if command not in HYDRA_APPS:
        return guard(lambda: importlib.import_module(COMMANDS[command][0]).main(rest), arguments=rest)
    return guard(_run_hydra_app, command, rest, arguments=rest)


def _run_hydra_app(command: str, args: list[str]) -> int:
    """Run a Hydra app module as ``__main__`` (a sweep's failed jobs make it exit 2 at the sweep's end)."""
    check_group_choices(args)  # an unknown group=option lists the valid ones before Hydra starts
    check_plugins(args)  # a sweeper or launcher that is unknown, not installed, or (SLURM) without sbatch
    if command == "inspect":
        args = [*args, *INSPECT_OVERRIDES]
    module = COMMANDS[command][0]
    sys.argv = [module, *overrides_first(args)]
    # Hydra then raises its own errors (bad overrides, clashing flags) instead of printing and exiting 1.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


def _help() -> str:
    commands = "\n".join(f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items())
    groups = "  ".join(f"{g}=" for g in GROUPS if g != "experiment") + "  experiment="
    return HELP.format(commands=commands, groups=groups)


if __name__ == "__main__":
    sys.exit(main())
