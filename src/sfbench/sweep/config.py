"""What a sweep samples and measures: :class:`SweepConfig`, read from SWEEP.yaml.

One file per sweep (the workflow writes it from its config) instead of a
dozen flags, so the settings that shape a sweep's numbers are one mapping
that can be hashed, recorded and reread. Unknown keys and wrong types are
errors that name the key: a misspelt ``stpes:`` must not silently sweep
nothing.

The cells are every fixed-step solver on every grid at every step count
(with ``native``, then its native-setting cells), then every adaptive solver
at every tolerance (rtol = atol). This module
imports only the standard library at the top, so building the command-line
parser stays cheap; :meth:`SweepConfig.cells` consults the solver registry
(torch) when the sweep runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sfbench.errors import SfbenchError
from sfbench.sweep.cells import Cell, native_cells

__all__ = ["Cell", "SweepConfig"]  # Cell lives in sweep.cells; imported from here too


def _check(where: str, value: Any, kind: type | tuple[type, ...], *, positive=False,
           optional=False) -> Any:
    """``value`` if it is a ``kind`` (ints are floats too; bools are not numbers)."""
    if value is None and optional:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if ok and positive and not value > 0:
        ok = False
    if not ok:
        names = " or ".join(k.__name__ for k in kinds) + (" or null" if optional else "")
        sign = "positive " if positive else ""
        raise SfbenchError(f"sweep config: {where} must be {sign}{names}, got {value!r}")
    return value


def _known(where: str, values: Any, allowed) -> dict:
    if not isinstance(values, dict):
        raise SfbenchError(f"sweep config: {where} must be a mapping, got {values!r}")
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise SfbenchError(
            f"sweep config: unknown key {unknown[0]!r} in {where}; valid: {', '.join(allowed)}"
        )
    return values


def _list(where: str, values: Any, kind: type, **check) -> list:
    if not isinstance(values, list):
        raise SfbenchError(f"sweep config: {where} must be a list, got {values!r}")
    return [_check(f"{where}[{i}]", v, kind, **check) for i, v in enumerate(values)]


POS = {"positive": True}


@dataclass(frozen=True)
class _Section:
    """A nested mapping of the config: keys are the fields, typed by ``TYPES``
    (key -> (type, checks of :func:`_check`); a class attribute, not a field)."""

    TYPES: ClassVar[dict] = {}

    @classmethod
    def from_dict(cls, where: str, values: Any):
        values = _known(where, values, [f.name for f in dataclasses.fields(cls)])
        return cls(**{k: _check(f"{where}.{k}", v, cls.TYPES[k][0], **cls.TYPES[k][1])
                      for k, v in values.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrajectoryConfig(_Section):
    """Store the ODE trajectories of the first ``n_points`` samples of one fixed-step cell."""

    solver: str = "heun"
    steps: int = 32
    n_points: int = 200
    TYPES: ClassVar[dict] = {"solver": (str, {}), "steps": (int, POS), "n_points": (int, POS)}


@dataclass(frozen=True)
class StraightnessConfig(_Section):
    """Straightness / path energy on ``n_points`` RK4 trajectories of ``steps`` steps."""

    n_points: int = 500
    steps: int = 100
    TYPES: ClassVar[dict] = {"n_points": (int, POS), "steps": (int, POS)}


@dataclass(frozen=True)
class NLLConfig(_Section):
    """NLL of ``n_points`` test points (null: all) through dopri5 at (rtol, atol)."""

    n_points: int | None = None
    rtol: float = 1e-5
    atol: float = 1e-5
    TYPES: ClassVar[dict] = {"n_points": (int, {**POS, "optional": True}), "rtol": (float, POS),
             "atol": (float, POS)}


@dataclass(frozen=True)
class FIDConfig(_Section):
    """Options of FID / KID on image data (:func:`sfbench.eval.fid.fid_kid`)."""

    kid_subsets: int = 100
    kid_subset_size: int = 1000
    device: str = "cpu"
    TYPES: ClassVar[dict] = {"kid_subsets": (int, POS), "kid_subset_size": (int, POS),
                             "device": (str, {})}


_SECTIONS = {"trajectory": TrajectoryConfig, "straightness": StraightnessConfig,
             "nll": NLLConfig, "fid": FIDConfig}


@dataclass(frozen=True)
class SweepConfig:
    """The settings of one sweep (SWEEP.yaml; CONTRACTS item 6).

    ``n_samples`` None means the size of the test split. ``options`` maps a
    solver name to its options (``{ddim: {eta: 0.5}}``), given to every cell
    of that solver.

    ``seed`` is the *selection* noise seed: its samples are stored and its
    metrics choose a model's best cell. Every cell is also sampled on each of
    ``held_out_seeds`` (noise seeds other than ``seed``), whose metrics are the
    figures reported, so a best cell's figure is never measured on the draw
    that chose it. ``native``: also sample each fixed-step solver on its native
    grid and options (:func:`~sfbench.sweep.cells.native_cells`).
    """

    solvers: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    grids: list[str] = field(default_factory=lambda: ["uniform"])
    adaptive: dict[str, list[float]] = field(default_factory=dict)
    n_samples: int | None = None
    seed: int = 0
    held_out_seeds: list[int] = field(default_factory=list)
    native: bool = False
    device: str = "cpu"
    options: dict[str, dict] = field(default_factory=dict)
    trajectory: TrajectoryConfig | None = None
    straightness: StraightnessConfig | None = None
    nll: NLLConfig | None = None
    fid: FIDConfig | None = None

    @classmethod
    def from_dict(cls, values: Any) -> SweepConfig:
        values = _known("the sweep config", values, [f.name for f in dataclasses.fields(cls)])
        kw: dict[str, Any] = {}
        for key, v in values.items():
            if key in ("solvers", "grids"):
                kw[key] = _list(key, v, str)
            elif key == "steps":
                kw[key] = _list(key, v, int, positive=True)
            elif key == "adaptive":
                kw[key] = {name: _tolerances(f"adaptive.{name}", tols)
                           for name, tols in _known("adaptive", v, v or {}).items()}
            elif key == "n_samples":
                kw[key] = _check(key, v, int, positive=True, optional=True)
            elif key == "seed":
                kw[key] = _check(key, v, int)
                if v < 0:
                    raise SfbenchError(f"sweep config: seed must be >= 0, got {v}")
            elif key == "held_out_seeds":
                kw[key] = _list(key, v, int)
            elif key == "native":
                kw[key] = _check(key, v, bool)
            elif key == "device":
                if v not in ("cpu", "cuda"):
                    raise SfbenchError(f"sweep config: device must be cpu or cuda, got {v!r}")
                kw[key] = v
            elif key == "options":
                kw[key] = {name: dict(_known(f"options.{name}", o, o or {}))
                           for name, o in _known("options", v, v or {}).items()}
            else:
                kw[key] = None if v is None else _SECTIONS[key].from_dict(key, v)
        _check_held_out(kw.get("held_out_seeds", []), kw.get("seed", 0))
        return cls(**kw)

    @classmethod
    def from_yaml(cls, path: str) -> SweepConfig:
        from sfbench.io import read_yaml

        try:
            return cls.from_dict(read_yaml(path))
        except SfbenchError as err:
            raise SfbenchError(f"{path}: {err}") from None

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in _SECTIONS:
            out[key] = None if out[key] is None else out[key].to_dict()
        return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                for k, v in out.items()}

    def cells(self) -> list[Cell]:
        """Every cell, fixed-step first; raises SfbenchError (or ValueError naming the valid
        names) for a solver of the wrong kind, an unknown solver, grid or option."""
        from sfbench.solvers import get_grid
        from sfbench.solvers.registry import get_solver

        grids = list(dict.fromkeys(self.grids))
        if self.solvers and not self.steps:
            raise SfbenchError("solvers need step counts (steps: / --steps)")
        cells = [Cell(s, n, None, g, self.options.get(s, {}))
                 for s in self.solvers for g in grids for n in self.steps]
        cells += [Cell(name, None, tol, "endpoints", self.options.get(name, {}))
                  for name, tols in self.adaptive.items() for tol in tols]
        if not cells:
            raise SfbenchError("nothing to sample: give solvers with steps, or adaptive solvers")
        for grid in grids:
            get_grid(grid)  # ValueError naming the valid grids
        for cell in cells:
            spec = get_solver(cell.solver)
            if spec.adaptive != (cell.steps is None):
                kind = ("adaptive (give it tolerances: adaptive: / --adaptive)" if spec.adaptive
                        else "fixed-step (give it steps: solvers: / --solvers)")
                raise SfbenchError(f"solver {cell.solver!r} is {kind}")
            spec.resolve_options(cell.options)  # ValueError naming an unknown option
        if self.native:  # after the checks: a native setting is the registry's, valid
            cells = native_cells(cells, list(self.steps))
        unused = sorted(set(self.options) - {c.solver for c in cells})
        if unused:
            raise SfbenchError(f"options given for {unused[0]!r}, which no cell samples")
        if self.trajectory and get_solver(self.trajectory.solver).adaptive:
            raise SfbenchError("the trajectory needs a fixed-step solver")
        keys = [c.key for c in cells]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:  # a key names one cell's samples and row; two cells may not share one
            raise SfbenchError(f"two cells would be named {twice[0]!r}")
        return cells


def _check_held_out(seeds: list[int], seed: int) -> None:
    """Held-out seeds must be new draws: non-negative, distinct, and not the selection seed
    (a figure measured on the draw that chose the cell is what they exist to avoid)."""
    for i, s in enumerate(seeds):
        if s < 0:
            raise SfbenchError(f"sweep config: held_out_seeds[{i}] must be >= 0, got {s}")
        if s == seed:
            raise SfbenchError(f"sweep config: held_out_seeds[{i}] = {s} is the selection seed "
                               "(seed); held-out seeds must be other draws")
        if s in seeds[:i]:
            raise SfbenchError(f"sweep config: held_out_seeds[{i}] = {s} is given twice")


def _tolerances(where: str, tols: Any) -> list[float]:
    values = _list(where, tols, float)
    bad = [v for v in values if not 0 < v < 1 or math.isnan(v)]
    if bad or not values:
        raise SfbenchError(f"sweep config: {where} must be tolerances 0 < tol < 1, got {tols!r}")
    return values
