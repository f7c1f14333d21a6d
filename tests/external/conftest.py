"""Fixtures of tests/external; the models themselves are in external_helpers.py."""

from __future__ import annotations

import pytest
from external_helpers import DDIM, write_unet


@pytest.fixture
def unet_dir(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    return write_unet(tmp_path / "unet", diffusers.DDIMScheduler, **DDIM)
