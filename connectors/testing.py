"""The connector contract as pytest tests, for the built-ins and for every plugin.

A plugin author gets the same checks the hub runs on its own connectors::

    from connectors.testing import ConnectorContract
    from acme_hub.connector import AcmeConnector

    class TestAcmeContract(ConnectorContract):
        connector = AcmeConnector

The checks need no remote system: they use the data of ``Connector.contract_example()``.
They cover registration, the configuration schema (every problem reported at once, secrets
never shown), and, for push connectors, signature checks and malformed payloads.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors import registry
from connectors.base import NAME, Connector, ContractExample, FieldKind, WebhookRequest
from connectors.exceptions import ConfigInvalid, NotSupported, PayloadInvalid, SignatureInvalid
from hub.facts import FactIn

_WRONG = {
    FieldKind.INTEGER: "many",
    FieldKind.NUMBER: "lots",
    FieldKind.BOOLEAN: "perhaps",
    FieldKind.URL: "ftp:/nowhere",
}


class ConnectorContract:
    """Subclass and set ``connector``, or override the ``connector_class`` fixture."""

    connector: type[Connector] | None = None

    @pytest.fixture
    def connector_class(self) -> type[Connector]:
        """The connector class under test: the test class's ``connector``."""
        assert self.connector is not None, "set `connector` on the test class"
        return self.connector

    @pytest.fixture
    def example(self, connector_class: type[Connector]) -> ContractExample:
        """The connector's :meth:`~connectors.base.Connector.contract_example`; it must give one."""
        example = connector_class.contract_example()
        assert example is not None, f"{connector_class.__name__}.contract_example() is missing"
        return example

    # -- registration and schema ---------------------------------------------------------

    def test_registered_under_its_name(self, connector_class: type[Connector]) -> None:
        """The name is well formed and its ``hub.connectors`` entry point loads this very class."""
        assert NAME.match(connector_class.name), connector_class.name
        assert registry.registry().connectors.get(connector_class.name) is connector_class, (
            f"no entry point {connector_class.name!r} in group {registry.GROUP!r}"
        )

    def test_does_something(self, connector_class: type[Connector], example: Any) -> None:
        """Built from the example configuration, the connector supports push, pull or both."""
        built = connector_class("contract", example.config)
        assert built.supports_push or built.supports_pull

    def test_schema_is_well_formed(self, connector_class: type[Connector]) -> None:
        """Setting names are unique identifiers, secret settings are text, the defaults validate.

        The defaults are validated together with the example's required settings.
        """
        names = [f.name for f in connector_class.config_fields]
        assert len(names) == len(set(names)), "a setting is declared twice"
        for fld in connector_class.config_fields:
            assert fld.name.isidentifier(), fld.name
            if fld.secret:
                assert fld.kind in (FieldKind.STRING, FieldKind.TEXT), f"{fld.name}: secret kind"
            if fld.default is not None:
                connector_class.validate_config(
                    {f.name: f.default for f in connector_class.config_fields if f.default}
                    | _required_only(connector_class)
                )

    def test_every_missing_required_setting_reported_at_once(
        self, connector_class: type[Connector]
    ) -> None:
        """An empty configuration is refused with one problem per required setting, all at once."""
        required = {f.name for f in connector_class.config_fields if f.required}
        if not required:
            pytest.skip("no required settings")
        with pytest.raises(ConfigInvalid) as caught:
            connector_class.validate_config({})
        assert {p.field for p in caught.value.problems} == required

    def test_every_bad_value_reported_at_once(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """Wrong values of every typed setting and an unknown setting are reported in one error.

        Typed settings are the integer, number, boolean and URL ones.
        """
        bad = {f.name: _WRONG[f.kind] for f in connector_class.config_fields if f.kind in _WRONG}
        config = example.config | bad | {"no_such_setting": "x"}
        with pytest.raises(ConfigInvalid) as caught:
            connector_class.validate_config(config)
        assert {p.field for p in caught.value.problems} == set(bad) | {"no_such_setting"}

    def test_secrets_are_never_shown(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """No secret of the example shows in a ``repr``, the public configuration or an error.

        The public configuration masks every secret setting that has a value.
        """
        secrets = [
            str(example.config[name])
            for name in connector_class.secret_fields()
            if example.config.get(name)
        ]
        built = connector_class("contract", example.config)
        shown = repr(built) + repr(built.public_config()) + str(built.public_config())
        with pytest.raises(ConfigInvalid) as caught:
            connector_class.validate_config(example.config | {"no_such_setting": "x"})
        shown += str(caught.value) + repr(caught.value.problems)
        for secret in secrets:
            assert secret not in shown
        for name in connector_class.secret_fields():
            if example.config.get(name):
                assert built.public_config()[name] != example.config[name]

    # -- push ----------------------------------------------------------------------------

    def _push(self, connector_class: type[Connector], example: ContractExample) -> Connector:
        built = connector_class("contract", example.config)
        if not built.supports_push:
            with pytest.raises(NotSupported):
                built.verify(WebhookRequest(b"{}"))
            pytest.skip("pull-only connector")
        assert example.webhooks, "a push connector's example needs signed webhooks"
        return built

    def test_signed_webhooks_parse_into_facts(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """Each signed example webhook verifies and parses into facts with a ``source_id``.

        The facts name this connector as their source, and parsing the same request again gives
        the same ids, so a replayed delivery is a duplicate. A pull-only connector must instead
        refuse webhooks with :class:`NotSupported`; then this and the other push tests are skipped.
        """
        built = self._push(connector_class, example)
        for request in example.webhooks:
            built.verify(request)
            facts = built.parse(request)
            assert facts and all(isinstance(f, FactIn) for f in facts)
            for fact in facts:
                assert fact.source == connector_class.name
                assert fact.source_id, "a fact without source_id cannot be deduplicated"
            again = built.parse(request)  # a replayed delivery must give the same ids
            assert [f.source_id for f in again] == [f.source_id for f in facts]

    def test_forged_webhooks_are_refused(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """``verify`` refuses each forged request with :class:`SignatureInvalid`.

        Without ``forged`` in the example, each example webhook is sent again without its
        signature headers (with its content type only).
        """
        built = self._push(connector_class, example)
        forged = example.forged or [
            WebhookRequest(r.body, {"Content-Type": r.content_type or "application/json"})
            for r in example.webhooks
        ]
        for request in forged:
            with pytest.raises(SignatureInvalid):
                built.verify(request)

    def test_malformed_payloads_name_a_field(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """Each malformed example, correctly signed, passes ``verify`` but not ``parse``.

        ``parse`` must raise :class:`PayloadInvalid` with the field at fault; the content is what is
        wrong, not the signature.
        """
        built = self._push(connector_class, example)
        if not example.malformed:
            pytest.skip("no malformed examples")
        assert example.sign is not None, "malformed examples need `sign`"
        for body, content_type in example.malformed:
            request = example.sign(body, content_type)
            built.verify(request)  # signed correctly: the content is what is wrong
            with pytest.raises(PayloadInvalid) as caught:
                built.parse(request)
            assert isinstance(caught.value.field, str)

    def test_valid_deliveries_without_facts_parse_into_none(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """Each ``empty`` example (a ping, an ignored event) verifies and parses into no fact."""
        built = self._push(connector_class, example)
        if not example.empty:
            pytest.skip("no empty examples")
        for request in example.empty:
            assert built.handshake(request) is None
            built.verify(request)
            assert built.parse(request) == []

    def test_setup_requests_are_answered_without_facts(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """Each ``handshakes`` example gets an answer from ``handshake``; deliveries get none.

        A handshake is answered before any signature check, so it must be recognised narrowly:
        no signed example webhook may be taken for one.
        """
        built = self._push(connector_class, example)
        for request in example.webhooks:
            assert built.handshake(request) is None, "a delivery was taken for a handshake"
        if not example.handshakes:
            pytest.skip("no handshake examples")
        for request in example.handshakes:
            answer = built.handshake(request)
            assert answer is not None and 200 <= answer.status < 300

    # -- pull ----------------------------------------------------------------------------

    def test_streams_are_well_named(
        self, connector_class: type[Connector], example: ContractExample
    ) -> None:
        """A pull connector's stream names are well formed and each is declared once."""
        built = connector_class("contract", example.config)
        if not built.supports_pull:
            pytest.skip("push-only connector")
        assert all(NAME.match(s) for s in built.streams), built.streams
        assert len(set(built.streams)) == len(built.streams), "a stream is declared twice"


def _required_only(cls: type[Connector]) -> dict[str, Any]:
    example = cls.contract_example()
    config = example.config if example else {}
    return {f.name: config.get(f.name) for f in cls.config_fields if f.required}
