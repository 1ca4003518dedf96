"""The kinds of value a config key may take (``Rule``: a test, the words for it, an example) and the
builders the schema (``ftcli.config.schema``) writes its rules with. Imports no torch."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_PATH_BYTES, MAX_NAME_BYTES = 4096, 255  # Linux's PATH_MAX and NAME_MAX


@dataclass(frozen=True)
class Rule:
    """What a key's value must be: a test, the words for it, and an example."""

    test: Callable[[Any], bool]
    expected: str
    example: str
    nullable: bool = False

    def or_null(self) -> Rule:
        return Rule(self.test, f"{self.expected}, or null", self.example, nullable=True)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_fraction(value: Any) -> bool:
    return isinstance(value, float) and 0.0 <= value <= 1.0


def whole(low: int, high: int | None = None, example: str = "1") -> Rule:
    words = f"a whole number >= {low}" if high is None else f"a whole number from {low} to {high}"
    return Rule(lambda v: is_whole(v) and v >= low and (high is None or v <= high), words, example)


def number(low: float, high: float | None = None, *, open_high: bool = False, example: str = "1.0") -> Rule:
    if high is None:
        words = f"a finite number >= {low:g}"
    else:
        words = f"a finite number from {low:g} to {'below ' if open_high else ''}{high:g}"

    def test(v: Any) -> bool:
        return is_number(v) and v >= low and (high is None or (v < high if open_high else v <= high))

    return Rule(test, words, example)


def positive(high: float, example: str) -> Rule:
    return Rule(lambda v: is_number(v) and 0 < v <= high, f"a finite number above 0, up to {high:g}", example)


def numbers(count: int, low: float, high: float, *, open_high: bool, example: str) -> Rule:
    item = number(low, high, open_high=open_high)
    return Rule(
        lambda v: isinstance(v, list) and len(v) == count and all(item.test(x) for x in v),
        f"a list of {count} {item.expected.replace('a finite number', 'finite numbers')}",
        example,
    )


BOOLEAN = Rule(lambda v: isinstance(v, bool), "true or false", "false")
AUTO_SWITCH = Rule(lambda v: v == "auto" or isinstance(v, bool), "auto, true or false", "auto")
TEXT = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string", "name")
FRACTION_OR_COUNT = Rule(
    lambda v: (is_whole(v) and v >= 0) or is_fraction(v),
    "a fraction from 0.0 to 1.0 or a whole number of batches",
    "0.25 or 10",
)
MAPPING = Rule(lambda v: isinstance(v, Mapping), "a mapping of key: value", "{}")


def is_path(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    encoded = value.encode("utf-8", "surrogateescape")
    return len(encoded) <= MAX_PATH_BYTES and all(len(part) <= MAX_NAME_BYTES for part in encoded.split(b"/"))


PATH = Rule(is_path, "a path of at most 4,096 bytes, 255 per folder or file name", "~/data/cats")


def choice(*values: Any) -> Rule:
    shown = ", ".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
    return Rule(
        lambda v: any(v == x and type(v) is type(x) for x in values), f"one of {shown}", str(values[0])
    )
