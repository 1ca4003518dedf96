"""``ftcli ls``: every option of every config group, one line each (``--config-dir DIR`` adds yours)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ftcli.command_line.config_groups import group_options, user_config_dirs


def main(args: list[str]) -> int:
    """Entry point of ``ftcli ls``: the options come from the config folders, so a new YAML shows up."""
    table = Table(title="ftcli config groups", title_justify="left")
    for column in ("group", "option", "description"):
        table.add_column(column)
    for group, options in group_options(user_config_dirs(args)).items():
        for index, (option, description) in enumerate(options.items()):
            table.add_row(group if index == 0 else "", option, description)
        table.add_section()
    Console().print(table)
    return 0
