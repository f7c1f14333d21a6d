"""Validation of named options against a registered set of defaults.

Solvers and grids both take keyword options; a misspelt option must fail
loudly and name the valid ones, not be ignored (a silent typo in a sweep
would benchmark the default while recording the intended value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def resolve_options(
    kind: str, name: str, defaults: Mapping[str, Any], options: Mapping[str, Any]
) -> dict[str, Any]:
    """``defaults`` updated with ``options``.

    Args:
        kind: what the options belong to, for the message ("solver", "grid").
        name: its registered name.
        defaults: every valid option with its default.
        options: the caller's options.

    Raises:
        ValueError: naming any unknown option and the valid ones.
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "none"
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {kind} {name!r}; "
            f"valid options: {valid}"
        )
    return {**defaults, **options}
