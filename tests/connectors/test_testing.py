"""The connector contract, run against every connector registered in ``hub.connectors``."""

from __future__ import annotations

import pytest

from connectors import registry
from connectors.base import Connector
from connectors.testing import ConnectorContract

REGISTRY = registry.registry()


def test_builtin_connectors_are_registered_and_none_is_broken() -> None:
    assert {"magento", "drupal", "exact"} <= set(REGISTRY.connectors)
    assert REGISTRY.broken == {}


class TestEveryRegisteredConnector(ConnectorContract):
    @pytest.fixture(params=sorted(REGISTRY.connectors))
    def connector_class(self, request: pytest.FixtureRequest) -> type[Connector]:
        return REGISTRY.connectors[request.param]
