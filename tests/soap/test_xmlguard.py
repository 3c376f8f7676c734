"""The XML guard: hostile, oversized or malformed bodies are refused before spyne parses them;
a safe body reaches spyne byte for byte. (The same refusals over HTTP: test_service.py.)"""

from __future__ import annotations

import io
from typing import Any

import pytest
from lxml import etree

from hub.soap.xmlguard import Refused, XmlGuard, check_document

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OPS = frozenset({"Profile_get", "Database_fields"})


def envelope(inner: str) -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP}"><s:Body>{inner}</s:Body></s:Envelope>'.encode()


def nested(depth: int) -> bytes:
    return envelope("<Profile_get>" + "<x>" * (depth - 3) + "</x>" * (depth - 3) + "</Profile_get>")


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        (
            b'<!DOCTYPE x [<!ENTITY a "b">]>' + envelope("<Profile_get/>"),
            "Client.XmlForbidden",
            "not allowed",
        ),
        (b'<!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><x/>', "Client.XmlForbidden", "DTD"),
        (b"<!DOCTYPE x><x/>", "Client.XmlForbidden", "a DTD (<!DOCTYPE ...>) is not allowed"),
        (envelope("<Profile_get>"), "Client.MalformedXml", "malformed XML"),
        (b"   \n", "Client.MalformedXml", "the request body is empty"),
        (b"id=7", "Client.MalformedXml", "malformed XML"),
        (envelope("<Database_dropAll/>"), "Client.UnknownOperation", "Database_dropAll: no such"),
        (nested(33), "Client.XmlTooDeep", "XML nested deeper than 32 levels"),
    ],
)
def test_refused_documents(body: bytes, code: str, says: str) -> None:
    with pytest.raises(Refused) as refused:
        check_document(body, operations=OPS)
    assert refused.value.code == code
    assert refused.value.message.startswith(says) or says in refused.value.message


@pytest.mark.parametrize(
    "body",
    [
        envelope("<Profile_get><id>7</id></Profile_get>"),
        envelope('<Database_fields xmlns="urn:contact-hub:soap:1"/>'),
        nested(32),  # exactly at the depth limit
        b"<?xml version='1.0' encoding='UTF-8'?>" + envelope("<Database_fields/>"),
    ],
)
def test_safe_documents_pass(body: bytes) -> None:
    check_document(body, operations=OPS)


def test_the_element_count_is_limited() -> None:
    body = envelope("<Database_fields>" + "<x/>" * 20 + "</Database_fields>")
    check_document(body, max_elements=23)  # Envelope, Body, the operation and 20 more
    with pytest.raises(Refused) as refused:
        check_document(body, max_elements=22)
    assert refused.value.code == "Client.XmlTooLarge"


def test_without_operations_any_body_element_passes() -> None:
    check_document(envelope("<Anything/>"))


class Guarded:
    """Call an :class:`XmlGuard` as a WSGI server would, recording what reached the app."""

    def __init__(self, **options: Any) -> None:
        self.reached: list[bytes] = []
        self.guard = XmlGuard(self.app, operations=OPS, **options)

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.reached.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"spyne"]

    def call(self, method: str, body: bytes, length: str | None = None) -> tuple[str, dict, bytes]:
        got: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            got["status"], got["headers"] = status, dict(headers)

        environ = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body)}
        environ["CONTENT_LENGTH"] = str(len(body)) if length is None else length
        out = b"".join(self.guard(environ, start_response))
        return got["status"], got["headers"], out


def fault(payload: bytes) -> tuple[str, str]:
    doc = etree.fromstring(payload)
    return doc.findtext(".//faultcode").split(":", 1)[1], doc.findtext(".//faultstring")


def test_a_safe_body_reaches_the_app_byte_for_byte() -> None:
    guarded = Guarded()
    body = envelope("<Profile_get><id>7</id></Profile_get>")
    status, _, out = guarded.call("POST", body)
    assert (status, out, guarded.reached) == ("200 OK", b"spyne", [body])


def test_get_passes_unchecked() -> None:  # the WSDL is served on GET /soap?wsdl
    guarded = Guarded()
    status, _, _ = guarded.call("GET", b"", length="")
    assert status == "200 OK" and guarded.reached == [b""]


@pytest.mark.parametrize(
    ("body", "length", "status", "code"),
    [
        (envelope("<Database_fields/>") + b" " * 200, None, "413 Request Entity Too Large",
         "Client.XmlTooLarge"),
        (b"", str(10**9), "413 Request Entity Too Large", "Client.XmlTooLarge"),  # not read
        (envelope("<Database_fields/>") * 10, "", "413 Request Entity Too Large",
         "Client.XmlTooLarge"),  # no Content-Length: read up to the limit only
        (envelope("<Database_fields/>"), "ten", "400 Bad Request", "Client.MalformedRequest"),
        (b"<!DOCTYPE x><x/>", None, "500 Internal Server Error", "Client.XmlForbidden"),
    ],
)  # fmt: skip
def test_refusals_are_faults_and_never_reach_the_app(
    body: bytes, length: str | None, status: str, code: str
) -> None:
    guarded = Guarded(max_bytes=200)
    got_status, headers, out = guarded.call("POST", body, length)
    assert got_status == status and fault(out)[0] == code
    assert headers["Content-Type"] == "text/xml; charset=utf-8"
    assert headers["Content-Length"] == str(len(out))
    assert guarded.reached == []


def test_soap_12_refusals_are_soap_12_faults() -> None:
    guarded = Guarded(soap_version="1.2")
    _, headers, out = guarded.call("POST", b"<!DOCTYPE x><x/>")
    assert headers["Content-Type"] == "application/soap+xml; charset=utf-8"
    ns = {"env": "http://www.w3.org/2003/05/soap-envelope"}
    doc = etree.fromstring(out)
    assert doc.findtext(".//env:Subcode/env:Value", namespaces=ns) == "XmlForbidden"
