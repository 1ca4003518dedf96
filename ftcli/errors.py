"""Errors a user can fix: the CLI prints them as a short message (no traceback) and exits 2."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class FtcliError(Exception):
    """Base of every user-facing error: what was wrong, and what to type instead."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(FtcliError):
    """A config value is unknown, of the wrong type or out of range."""


class DataError(FtcliError):
    """The dataset is missing, empty, mis-shaped or holds unreadable files."""


class WeightsError(FtcliError):
    """Weights or checkpoints cannot be found, downloaded or loaded (or would run code if loaded)."""


class OutputError(FtcliError):
    """The run directory cannot be written, or already holds an earlier run that must not be overwritten."""


class DivergedError(FtcliError):
    """Training produced a NaN or infinite loss (or weights); nothing after that point was saved."""


class ExportError(FtcliError):
    """An export failed or does not reproduce PyTorch's outputs: not the user's input, so exit 1."""

    exit_code = 1


def unknown_name(kind: str, name: object, valid: list[str], key: str | None = None) -> ConfigError:
    """The error for a name that is not in a registry: it lists the valid names."""
    shown = ", ".join(sorted(valid))
    where = f" ({key}={name})" if key else ""
    return ConfigError(f"Unknown {kind} '{name}'{where}.", f"Valid {kind} names: {shown}")


def reject_unknown_keys(
    given: Iterable[str], valid: Sequence[str], prefix: str, *, kind: str = "", list_prefix: bool = True
) -> None:
    """Raise for keys of a config block that no reader knows (a typo would otherwise be ignored):
    it names each unknown key in full and lists the valid ones."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        shown = ", ".join(f"{prefix}.{key}" if list_prefix else key for key in valid)
        label = f"{kind} key(s)" if kind else "key(s)"
        raise ConfigError(
            f"Unknown {label}: {', '.join(f'{prefix}.{key}' for key in unknown)}.", f"Valid keys: {shown}"
        )
