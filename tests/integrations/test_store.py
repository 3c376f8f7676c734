"""Configured connector instances: validated before anything is written, secrets sealed at
rest and masked in every view, unknown or disabled instances refused by name."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.exceptions import ConfigInvalid
from hub.integrations.models import ConnectorInstance, ConnectorState
from hub.integrations.secrets import SecretBox
from hub.integrations.store import (
    InstanceError,
    list_instances,
    load_connector,
    save_instance,
)
from hub.runtime import Runtime

ERP = {"division": 7, "client_id": "cid", "client_secret": "s3cret-1", "refresh_token": "r0"}


def box(rt: Runtime) -> SecretBox:
    return SecretBox(rt.settings.secret_key)


def rows(rt: Runtime) -> int:
    with rt.db.session() as s:
        return s.scalar(select(func.count()).select_from(ConnectorInstance)) or 0


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        ({**ERP, "division": "abc"}, ["division: expected a whole number"]),
        ({**ERP, "colour": "red"}, ["colour: unknown setting"]),
        ({"division": 7}, ["client_id: is required", "client_secret: is required"]),
    ],
)
def test_save_validates_before_writing(
    hub_runtime: Runtime, config: dict[str, Any], problems: list[str]
) -> None:
    with pytest.raises(ConfigInvalid) as invalid:
        save_instance(hub_runtime.db, box(hub_runtime), "erp", "exact", config)
    found = [str(p) for p in invalid.value.problems]
    assert all(any(p.startswith(want) for p in found) for want in problems), found
    assert "s3cret" not in str(invalid.value)
    assert rows(hub_runtime) == 0


@pytest.mark.parametrize("name", ["", "ERP", "erp shop", "-erp", "e" * 65, "erp/1"])
def test_a_bad_name_is_refused(hub_runtime: Runtime, name: str) -> None:
    with pytest.raises(InstanceError, match="must be 1-64 of a-z, 0-9, _ and -"):
        save_instance(hub_runtime.db, box(hub_runtime), name, "exact", ERP)
    assert rows(hub_runtime) == 0


def test_secrets_are_sealed_at_rest_and_masked_in_views(hub_runtime: Runtime) -> None:
    saved = save_instance(hub_runtime.db, box(hub_runtime), "erp", "exact", ERP)
    [listed] = list_instances(hub_runtime.db, box(hub_runtime))
    for view in (saved, listed):
        assert view.config["client_secret"] == "********"
        assert view.config["refresh_token"] == "********"
        assert view.config["client_id"] == "cid" and view.config["division"] == 7
        assert "s3cret-1" not in repr(view.as_dict())
    with hub_runtime.db.session() as s:
        row = s.scalar(select(ConnectorInstance))
        assert "client_secret" not in row.settings and "s3cret-1" not in row.secrets
    connector, _ = load_connector(hub_runtime.db, box(hub_runtime), "erp")
    assert connector.config["client_secret"] == "s3cret-1"  # the connector itself gets it


def test_an_instance_exists_once_unless_replaced(hub_runtime: Runtime) -> None:
    db, sb = hub_runtime.db, box(hub_runtime)
    save_instance(db, sb, "erp", "exact", ERP)
    with pytest.raises(InstanceError, match="exists already"):
        save_instance(db, sb, "erp", "exact", {**ERP, "division": 8})
    with pytest.raises(InstanceError, match="'erp' is a exact connector"):
        save_instance(db, sb, "erp", "drupal", {"base_url": "https://x.example"}, replace=True)
    replaced = save_instance(db, sb, "erp", "exact", {**ERP, "division": 8}, replace=True)
    assert replaced.config["division"] == 8 and rows(hub_runtime) == 1


@pytest.mark.parametrize(
    ("change", "state_kept"),
    [({}, True), ({"client_secret": "s3cret-2"}, False), ({"division": 9}, False)],
)
def test_replacing_keeps_the_oauth_state_only_with_the_same_settings(
    hub_runtime: Runtime, change: dict[str, Any], state_kept: bool
) -> None:
    db, sb = hub_runtime.db, box(hub_runtime)
    save_instance(db, sb, "erp", "exact", ERP)
    connector, _ = load_connector(db, sb, "erp")
    connector.state.update(lambda s: {**s, "refresh_token": "r7"})  # a pull rotated it
    save_instance(db, sb, "erp", "exact", {**ERP, **change}, replace=True)
    connector, _ = load_connector(db, sb, "erp")
    assert connector.state.load() == ({"refresh_token": "r7"} if state_kept else {})


def test_unknown_and_disabled_instances_are_refused_by_name(hub_runtime: Runtime) -> None:
    db, sb = hub_runtime.db, box(hub_runtime)
    with pytest.raises(InstanceError, match="no connector instance named 'erp'"):
        load_connector(db, sb, "erp")
    save_instance(db, sb, "erp", "exact", ERP)
    with db.session() as s:
        s.scalar(select(ConnectorInstance)).enabled = False
    with pytest.raises(InstanceError, match="connector instance 'erp' is disabled"):
        load_connector(db, sb, "erp")
    assert [v.enabled for v in list_instances(db, sb)] == [False]


def test_state_updates_are_sealed_and_counted(hub_runtime: Runtime) -> None:
    db, sb = hub_runtime.db, box(hub_runtime)
    save_instance(db, sb, "erp", "exact", ERP)
    connector, instance_id = load_connector(db, sb, "erp")
    connector.state.update(lambda s: {"refresh_token": "r1"})
    connector.state.update(lambda s: {"refresh_token": s["refresh_token"] + "-next"})
    with db.session() as s:
        state = s.get(ConnectorState, instance_id)
        assert state.version == 2 and "r1" not in state.sealed
    assert load_connector(db, sb, "erp")[0].state.load() == {"refresh_token": "r1-next"}
