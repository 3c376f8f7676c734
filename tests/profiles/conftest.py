"""Fixtures of the profile tests."""

from __future__ import annotations

import pytest

from hub.profiles.service import ProfileService
from hub.runtime import Runtime


@pytest.fixture
def svc(hub_runtime: Runtime) -> ProfileService:
    return ProfileService(hub_runtime.db, hub_runtime.settings, hub_runtime.redis, "soap")
