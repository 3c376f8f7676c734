"""The hub's generated contract tests, plus what only Acme's connector knows."""

from __future__ import annotations

from acme_connector import AcmeConnector

from connectors.testing import ConnectorContract


class TestAcmeContract(ConnectorContract):
    connector = AcmeConnector


def test_a_registration_becomes_an_event_registered_fact() -> None:
    example = AcmeConnector.contract_example()
    connector = AcmeConnector("acme-main", example.config)
    [fact] = connector.parse(example.webhooks[0])
    assert fact.type == "event.registered"
    assert fact.profile.email == "ada@example.com"
    assert fact.source_id == "acme-main:reg_1"
