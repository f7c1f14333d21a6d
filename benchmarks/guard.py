"""The regression guard: compare measured ratios with the committed ones, direction-aware.

Every result JSON carries ``"ratios": {name: {"value", "better", "target"}}``
(see :func:`benchmarks.reporting.ratio`). A ratio has got worse by more than
``tolerance`` when, relative to its committed value, it fell (``better:
higher``, a speed-up or a fraction of peak) or rose (``better: lower``, an
overhead) by more than that fraction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

#: A ratio that moved the wrong way by more than this fraction of its committed value fails.
TOLERANCE = 0.20


@dataclass(frozen=True)
class Comparison:
    name: str
    committed: float
    current: float
    better: str

    @property
    def change(self) -> float:
        """Relative change in the bad direction: > 0 is worse, < 0 is better."""
        delta = (self.current - self.committed) / abs(self.committed)
        return -delta if self.better == "higher" else delta

    def describe(self) -> str:
        word = "worse" if self.change > 0 else "better"
        return (f"{self.name}: {self.committed:.4g} -> {self.current:.4g} "
                f"({abs(self.change):.0%} {word}; {self.better} is better)")


def load_ratios(results_dir: str | Path) -> dict[str, dict]:
    """Every ratio of every ``*.json`` in ``results_dir``, by name."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"results directory {results_dir} does not exist")
    ratios: dict[str, dict] = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        for name, entry in record.get("ratios", {}).items():
            if entry.get("better") not in ("higher", "lower") or "value" not in entry:
                raise ValueError(f"{path}: ratio {name!r} needs 'value' and 'better' "
                                 f"('higher' or 'lower'), got {entry}")
            if name in ratios:
                raise ValueError(f"{path}: ratio {name!r} appears in two result files")
            ratios[name] = entry
    return ratios


def compare(committed: dict[str, dict], current: dict[str, dict]) -> list[Comparison]:
    """One comparison per ratio present in both, sorted worst first."""
    rows = []
    for name in committed.keys() & current.keys():
        if committed[name]["better"] != current[name]["better"]:
            raise ValueError(f"ratio {name!r} changed direction between the two result sets")
        if committed[name]["value"] == 0:
            continue  # no relative change from zero; nothing to guard
        rows.append(Comparison(name, committed[name]["value"], current[name]["value"],
                               committed[name]["better"]))
    return sorted(rows, key=lambda c: -c.change)


def regressions(rows: list[Comparison], tolerance: float = TOLERANCE) -> list[Comparison]:
    return [c for c in rows if c.change > tolerance]


def check(committed_dir: str | Path, current_dir: str | Path,
          tolerance: float = TOLERANCE) -> tuple[list[Comparison], list[str]]:
    """(every comparison, the names measured on only one side)."""
    committed, current = load_ratios(committed_dir), load_ratios(current_dir)
    if not committed:
        raise ValueError(f"no committed ratios in {committed_dir}")
    unmatched = sorted(committed.keys() ^ current.keys())
    return compare(committed, current), unmatched
