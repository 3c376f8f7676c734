"""The plugin registry: a broken plugin is reported, not fatal."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from connectors import registry


def test_a_broken_plugin_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = [
        EntryPoint("magento", "connectors.builtin.magento:MagentoConnector", registry.GROUP),
        EntryPoint("ghost", "no_such_module:Thing", registry.GROUP),
        EntryPoint("misnamed", "connectors.builtin.drupal:DrupalConnector", registry.GROUP),
        EntryPoint("notaconnector", "json:loads", registry.GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps)
    found = registry.load()
    assert list(found.connectors) == ["magento"]
    assert "cannot import" in found.broken["ghost"]
    assert "differs from the class's name 'drupal'" in found.broken["misnamed"]
    assert "not a subclass" in found.broken["notaconnector"]
    with pytest.raises(registry.UnknownConnector, match="ghost' is installed but failed to load"):
        found.get("ghost")
    with pytest.raises(registry.UnknownConnector, match=r"installed: magento\); did you mean"):
        found.get("magneto")
