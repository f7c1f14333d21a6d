"""Fixtures of the plug-in tests (helpers in plugin_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the pipeline tests' helpers (a scratch copy of the workflow, a new machine's PATH)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))

from plugin_helpers import install_example  # noqa: E402

from sfbench import plugins  # noqa: E402


@pytest.fixture(scope="session")
def example_plugin(tmp_path_factory) -> Path:
    """The example package installed (once per session) into a directory of its own."""
    return install_example(tmp_path_factory.mktemp("plugin") / "site")


@pytest.fixture
def example_modules(example_plugin, monkeypatch):
    """The installed example's modules importable in this process, without its entries
    joining this process's registries: the entry-point scan is cached first (nothing
    installed), so only a direct import reaches the modules."""
    for group in plugins.GROUPS.values():
        plugins.entries(group)
    monkeypatch.syspath_prepend(str(example_plugin))
    yield
    for name in [m for m in sys.modules if m.startswith("sfbench_plugin_example")]:
        del sys.modules[name]
