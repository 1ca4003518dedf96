"""The terminal: one console for output, one for errors, printing on rank 0 only.

A multi-process (DDP) run shows one of each line. What the tables hold is ``ftcli.ui.tables``.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from ftcli.notices import is_rank_zero

console = Console()
error_console = Console(stderr=True)
__all__ = ["console", "error_console", "is_rank_zero", "print_error", "show", "show_line"]


def show(renderable: Any) -> None:
    if is_rank_zero():
        console.print(renderable)


def show_line(text: str) -> None:
    """One line printed verbatim and never wrapped (a command to copy), on rank 0."""
    if is_rank_zero():
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_error(err: BaseException) -> None:
    """A user error: a short red message and its hint, no traceback."""
    message = getattr(err, "message", str(err))
    hint = getattr(err, "hint", None)
    if "Original Traceback" in message:  # re-raised from a DataLoader worker: drop the worker's traceback
        lines = message.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("ftcli.errors.")]
        if starts:
            message = "\n".join(lines[starts[-1] :]).split(": ", 1)[1]
    # Messages hold paths and overrides such as data.root=/x/[train] or data.classes=[5,6]: print them
    # verbatim, never as rich markup (which would drop "[train]" and raise on "[/...]").
    error_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        error_console.print(hint, markup=False, highlight=False, soft_wrap=True)
    sys.stderr.flush()
