"""Hydra's command line as ftcli accepts it: overrides and flags in any order."""

from __future__ import annotations

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
        if arg.startswith("-"):
            flags.append(arg)
        else:
            overrides.append(quote_non_ascii(arg))
        index += 1
    return [*overrides, *flags]


def quote_non_ascii(override: str) -> str:
    """``key=résnet18`` -> ``key='résnet18'``: Hydra's grammar refuses non-ASCII letters unquoted (a
    lexer message that does not say why), so such a value reaches the key's own check as a string and
    gets its message (``unknown model 'résnet18'``, valid: ...). Lists, sweeps (``a,b``), functions and
    values with quotes or backslashes are left as written."""
    key, sep, value = override.partition("=")
    if not sep or value.isascii() or not value or value[0] in "[{" or any(c in value for c in "'\",()\\"):
        return override
    return f"{key}='{value}'"
