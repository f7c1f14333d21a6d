"""Plug-ins: registry entries that other installed packages add through entry points.

A distribution declares entries in the groups of :data:`GROUPS`, e.g. in its
``pyproject.toml``::

    [project.entry-points."sfbench.methods"]
    rf_logit_normal = "my_package.method:RF_LOGIT_NORMAL"

The entry's name is the registry key; its value names the object
(``module:attribute``): a :class:`~sfbench.methods.Method`, a
:class:`~sfbench.solvers.registry.SolverSpec`, a
:class:`~sfbench.eval.metrics.Metric`, a :class:`~sfbench.data.Dataset`, or
a network class (a ``torch.nn.Module`` subclass). docs/EXTENDING.md walks
through an example.

Each registry is a :class:`Registry`: its built-in entries, plus the
plug-ins of its group, imported the first time the registry is read rather
than when its module is imported. A plug-in module imports sfbench's modules
(to build a ``Method``, say), so importing plug-ins while those modules are
still being imported would make a cycle; reading happens after imports, and
reads made while the plug-ins load (a plug-in deriving its entry from a
built-in one) see the built-ins. A plug-in that cannot be imported, is not of
the registry's type, is named differently from its entry, or takes a built-in
or another plug-in's name raises :class:`PluginError`, naming the
distribution and the entry.

:func:`names` gives the entries' names without importing them (standard
library only), for the command-line help (:mod:`sfbench.commands.names`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from importlib import metadata
from typing import Any, TypeVar

from sfbench.errors import SfbenchError

#: registry -> entry-point group.
GROUPS = {
    "methods": "sfbench.methods",
    "solvers": "sfbench.solvers",
    "metrics": "sfbench.metrics",
    "datasets": "sfbench.datasets",
    "networks": "sfbench.networks",
}

T = TypeVar("T")
#: (entry name, loaded object) -> what is wrong with it, or None.
Check = Callable[[str, Any], "str | None"]


class PluginError(SfbenchError):
    """A plug-in entry point that cannot join its registry (the message says which and why)."""


@functools.cache  # one scan of the installed distributions per process (~10 ms)
def entries(group: str) -> tuple[metadata.EntryPoint, ...]:
    """The entry points of ``group``, sorted by name (registry order must not depend on
    the order of sys.path)."""
    if group not in GROUPS.values():
        raise ValueError(f"unknown plug-in group {group!r}; valid: {', '.join(GROUPS.values())}")
    return tuple(sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value)))


def names(group: str) -> tuple[str, ...]:
    """Names of the plug-ins of ``group``, without importing them."""
    return tuple(dict.fromkeys(e.name for e in entries(group)))


def distributions() -> dict[str, str]:
    """``{distribution: version}`` of every installed distribution that declares a plug-in
    (provenance: its code shapes results as much as sfbench's own)."""
    found = {}
    for group in GROUPS.values():
        for e in entries(group):
            if e.dist is not None:
                found[e.dist.name] = e.dist.version
    return dict(sorted(found.items()))


def describe(entry: metadata.EntryPoint) -> str:
    dist = f"{entry.dist.name} {entry.dist.version}" if entry.dist else "an unknown distribution"
    return f"plug-in {entry.name!r} = {entry.value!r} (group {entry.group}, from {dist})"


def load(group: str, builtins: Mapping[str, Any], check: Check) -> dict[str, Any]:
    """Import every entry of ``group``; each must pass ``check`` and not reuse a name."""
    loaded: dict[str, Any] = {}
    for entry in entries(group):
        where = describe(entry)
        if entry.name in builtins:
            raise PluginError(f"{where}: {entry.name!r} is a built-in name of sfbench; "
                              "a plug-in cannot replace it (rename the entry point)")
        if entry.name in loaded:
            raise PluginError(f"{where}: another installed plug-in already has the name "
                              f"{entry.name!r}")
        try:
            obj = entry.load()
        except Exception as err:  # any failure of foreign code: say whose it is
            raise PluginError(f"{where} cannot be loaded: {type(err).__name__}: {err}") from err
        problem = check(entry.name, obj)
        if problem:
            raise PluginError(f"{where}: {problem}")
        loaded[entry.name] = obj
    return loaded


def instance_of(cls: type) -> Check:
    """A check for registries of ``cls`` objects whose ``name`` is their key."""

    def check(name: str, obj: Any) -> str | None:
        if not isinstance(obj, cls):
            return f"expected a {cls.__module__}.{cls.__qualname__}, got {type(obj).__name__}"
        if obj.name != name:
            return f"the object is named {obj.name!r}; its entry point must have that name"
        return None

    return check


class Registry(MutableMapping[str, T]):
    """A registry: the built-in entries, then the plug-ins of ``group`` once it is read.

    Writing (``registry[name] = entry``: a built-in registered at import, a
    test's extra entry) does not load the plug-ins, so registering built-ins
    while the registry's module is imported imports no plug-in.
    """

    def __init__(self, group: str, builtins: Mapping[str, T], check: Check):
        self.group, self._check = group, check
        self._entries: dict[str, T] = dict(builtins)
        self._state = "pending"  # -> "loading" -> "loaded"

    def _loaded(self) -> dict[str, T]:
        if self._state == "pending":
            self._state = "loading"  # reads while plug-ins import see the built-ins
            try:
                self._entries.update(load(self.group, dict(self._entries), self._check))
            except BaseException:
                self._state = "pending"  # the next read raises the same error again
                raise
            self._state = "loaded"
        return self._entries

    def __getitem__(self, name: str) -> T:
        return self._loaded()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __setitem__(self, name: str, entry: T) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __repr__(self) -> str:
        return f"Registry({self.group!r}, {list(self._entries)!r}, {self._state})"
