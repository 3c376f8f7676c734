"""SOAP faults: stable ``Client.<Code>`` codes, the field first, well-formed envelopes."""

from __future__ import annotations

import pytest
from lxml import etree

from hub.exceptions import InputError
from hub.soap.faults import SOAP11_ENV, SOAP12_ENV, fault_code, fault_document, fault_text


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("unknown_field", "Client.UnknownField"),
        ("not_found", "Client.NotFound"),
        ("invalid", "Client.Invalid"),
        ("reserved_field_name", "Client.ReservedFieldName"),
    ],
)
def test_fault_code(code: str, expected: str) -> None:
    assert fault_code(code) == expected


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("fields[0].value", "fields[0].value: 'old' is not an integer"),
        ("", "'old' is not an integer"),
    ],
)
def test_fault_text_starts_with_the_field(field: str, text: str) -> None:
    assert fault_text(InputError("invalid_value", field, "'old' is not an integer")) == text


NASTY = "a <b> & 'c' \"d\""


def test_soap_11_fault_document() -> None:
    doc = etree.fromstring(fault_document("Client.XmlForbidden", NASTY))
    assert doc.tag == f"{{{SOAP11_ENV}}}Envelope"
    fault = doc.find(f"{{{SOAP11_ENV}}}Body/{{{SOAP11_ENV}}}Fault")
    assert fault.findtext("faultcode") == "soap11env:Client.XmlForbidden"
    assert fault.findtext("faultstring") == NASTY


@pytest.mark.parametrize(
    ("code", "value", "subcode"),
    [
        ("Client.XmlTooDeep", "env:Sender", "XmlTooDeep"),
        ("Server.Unavailable", "env:Receiver", "Unavailable"),
        ("Client", "env:Sender", None),
    ],
)
def test_soap_12_fault_document(code: str, value: str, subcode: str | None) -> None:
    ns = {"env": SOAP12_ENV}
    doc = etree.fromstring(fault_document(code, NASTY, "1.2"))
    assert doc.tag == f"{{{SOAP12_ENV}}}Envelope"
    assert doc.findtext(".//env:Fault/env:Code/env:Value", namespaces=ns) == value
    assert doc.findtext(".//env:Code/env:Subcode/env:Value", namespaces=ns) == subcode
    assert doc.findtext(".//env:Reason/env:Text", namespaces=ns) == NASTY
