"""Refuse hostile XML before spyne (and lxml) ever parse it.

Every POST body sent to ``/soap`` is first read with a size cap and parsed by
``defusedxml`` (expat) with DTDs, entity declarations and external references forbidden,
counting element depth and number as it goes. That refuses, each with its own fault code:
billion laughs (entity expansion), XXE (external entities), any DTD, documents over
:data:`MAX_BYTES`, nested deeper than :data:`MAX_DEPTH` or with more than
:data:`MAX_ELEMENTS` elements, and malformed XML. Only a document that passes is handed on,
byte for byte, to spyne, whose own lxml parser is also built with ``resolve_entities=False``,
``load_dtd=False`` and ``no_network=True``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import iterparse

from hub.soap.faults import fault_document

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ELEMENTS = 50_000

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Refused(Exception):
    """The body is not a document the hub will parse; ``code`` is the fault code."""

    def __init__(self, code: str, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def check_document(
    body: bytes,
    max_depth: int = MAX_DEPTH,
    max_elements: int = MAX_ELEMENTS,
    operations: frozenset[str] = frozenset(),
) -> None:
    """Parse ``body`` safely and raise :class:`Refused` if it is hostile or malformed.

    With ``operations`` given, the element inside the SOAP Body must be one of them, so an
    unknown operation gets ``Client.UnknownOperation`` naming it (rather than a schema error).
    """
    if not body.strip():
        raise Refused("Client.MalformedXml", "the request body is empty; send a SOAP envelope")
    depth = elements = 0
    path: list[str] = []
    try:
        for event, elem in iterparse(
            io.BytesIO(body),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        ):
            if event == "start":
                depth += 1
                elements += 1
                path.append(elem.tag)
                if operations and depth == 3 and path[1].endswith("}Body"):
                    _check_operation(elem.tag, operations)
                if depth > max_depth:
                    raise Refused("Client.XmlTooDeep", f"XML nested deeper than {max_depth} levels")
                if elements > max_elements:
                    raise Refused("Client.XmlTooLarge", f"more than {max_elements} XML elements")
            else:
                depth -= 1
                path.pop()
    except DTDForbidden:
        raise Refused("Client.XmlForbidden", "a DTD (<!DOCTYPE ...>) is not allowed") from None
    except EntitiesForbidden:
        raise Refused("Client.XmlForbidden", "entity declarations are not allowed") from None
    except ExternalReferenceForbidden:
        raise Refused("Client.XmlForbidden", "external references are not allowed") from None
    except DefusedXmlException as exc:
        raise Refused("Client.XmlForbidden", f"forbidden XML construct: {exc}") from None
    except ParseError as exc:
        raise Refused("Client.MalformedXml", f"malformed XML: {exc}") from None


def _check_operation(tag: str, operations: frozenset[str]) -> None:
    name = tag.rpartition("}")[2]
    if name not in operations:
        raise Refused(
            "Client.UnknownOperation",
            f"{name}: no such operation; the WSDL at /soap?wsdl lists them",
        )


class XmlGuard:
    """WSGI middleware: only safe, bounded XML bodies reach the wrapped SOAP application."""

    def __init__(
        self,
        app: WsgiApp,
        max_bytes: int = MAX_BYTES,
        operations: frozenset[str] = frozenset(),
        soap_version: str = "1.1",
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.operations = operations
        self.soap_version = soap_version

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Pass a POST on only if its body is bounded, safe XML naming a known operation.

        Anything else is answered here with a SOAP fault (and its HTTP status); other methods (a
        WSDL request) pass through unchecked.
        """
        if environ.get("REQUEST_METHOD", "GET").upper() != "POST":
            return self.app(environ, start_response)
        try:
            body = self._read(environ)
            check_document(body, operations=self.operations)
        except Refused as refused:
            payload = fault_document(refused.code, refused.message, self.soap_version)
            start_response(
                f"{refused.status} {HTTPStatus(refused.status).phrase}",
                [
                    ("Content-Type", self._content_type),
                    ("Content-Length", str(len(payload))),
                ],
            )
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    @property
    def _content_type(self) -> str:
        if self.soap_version == "1.2":
            return "application/soap+xml; charset=utf-8"
        return "text/xml; charset=utf-8"

    def _read(self, environ: dict[str, Any]) -> bytes:
        raw = environ.get("CONTENT_LENGTH") or ""
        try:
            declared = int(raw) if raw else None
        except ValueError:
            raise Refused(
                "Client.MalformedRequest", "Content-Length is not a number", 400
            ) from None
        if declared is not None and declared > self.max_bytes:
            raise Refused("Client.XmlTooLarge", f"request body over {self.max_bytes} bytes", 413)
        stream = environ["wsgi.input"]
        body = stream.read(declared if declared is not None else self.max_bytes + 1)
        if len(body) > self.max_bytes:
            raise Refused("Client.XmlTooLarge", f"request body over {self.max_bytes} bytes", 413)
        return body
