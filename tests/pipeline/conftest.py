"""Fixtures of the pipeline tests (helpers are in pipeline_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_helpers import copy_workflow


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A scratch working directory holding a copy of the workflow files."""
    return copy_workflow(tmp_path / "wf")
