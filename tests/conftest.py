"""Shared fixtures: a fresh backend of every kind for the conformance suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from backends_under_test import BACKENDS

# CI runs on 2 shared cores: generous deadlines, bounded example counts.
settings.register_profile("ci", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    """A new, empty backend of each registered kind."""
    return BACKENDS[request.param](tmp_path, request)
