"""Config that came out of a checkpoint is data, never code: ``_target_`` must be on an allowlist.

A checkpoint loads with ``weights_only=True``, so unpickling cannot run code, but its stored config
is plain data that ``hydra.utils.instantiate`` would happily turn into a call of anything it names
(``_target_: os.system``). Every ``_target_`` inside such a config must resolve to a class or
function defined in ftcli, torch or torchvision, and not in the parts of torch that load or
compile code (torch.hub, torch.load, torch.jit, torch.package, cpp extensions). The resolved
object is checked, not just the dotted name: ``torch.serialization.os.system`` is ``os.system``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftcli.errors import WeightsError

ALLOWED_ROOTS = ("ftcli", "torch", "torchvision")
BLOCKED_MODULES = (
    "torch.hub",
    "torch.serialization",
    "torch.jit",
    "torch.package",
    "torch.utils.cpp_extension",
)
TARGET_KEYS = ("_target_",)


def targets(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (key path, ``_target_`` value) inside a nested dict/list config."""
    found: list[tuple[str, str]] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key in TARGET_KEYS:
                found.append((where, str(value)))
            else:
                found.extend(targets(value, where))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            found.extend(targets(value, f"{path}[{index}]"))
    return found


def check_targets(node: Any, source: str) -> None:
    """WeightsError naming the first ``_target_`` in ``node`` that is not allowed (``source``: where from)."""
    for where, target in targets(node):
        if not is_allowed(target):
            raise WeightsError(
                f"Refused the config stored in {source}: {where} is '{target}', which is not a class or "
                f"function of {', '.join(ALLOWED_ROOTS)}; instantiating it could run code.",
                "Use a checkpoint written by ftcli (or remove that entry from the file's stored config).",
            )


def is_allowed(target: str) -> bool:
    """Whether ``target`` names (and resolves to) a callable defined under an allowed package."""
    if target.split(".")[0] not in ALLOWED_ROOTS:
        return False  # checked before resolving, so nothing outside the allowed packages is imported
    try:
        from hydra._internal.utils import _locate

        obj = _locate(target)
    except Exception:
        return False
    module = str(getattr(obj, "__module__", "") or "")
    if module.split(".")[0] not in ALLOWED_ROOTS:
        return False
    return not any(module == blocked or module.startswith(f"{blocked}.") for blocked in BLOCKED_MODULES)
