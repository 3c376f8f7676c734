"""SOAP faults with stable codes: what every error of the SOAP API looks like.

A fault's ``faultcode`` is ``Client.<Code>`` (the caller must change the request) or
``Server.<Code>`` (the hub failed; retry later); ``faultstring`` starts with the field at
fault (``requirements[0].fieldname: unknown field 'colour' ...``). The same
:class:`hub.exceptions.InputError` gives REST its ``error``/``field`` and SOAP its fault.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from hub.exceptions import InputError

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"


def fault_code(code: str) -> str:
    """``unknown_field`` -> ``Client.UnknownField``."""
    return "Client." + "".join(part.capitalize() for part in code.split("_"))


def fault_text(error: InputError) -> str:
    """The ``faultstring`` of ``error``: the field at fault first (``field: message``)."""
    return f"{error.field}: {error.message}" if error.field else error.message


def fault_document(code: str, message: str, version: str = "1.1") -> bytes:
    """A SOAP fault envelope, for refusals made before spyne sees the request.

    SOAP 1.2 spells ``Client.XmlForbidden`` as Code ``Sender`` with Subcode ``XmlForbidden``,
    as spyne does for the faults it writes itself.
    """
    if version == "1.2":
        kind, _, sub = code.partition(".")
        value = "Sender" if kind == "Client" else "Receiver"
        subcode = f"<env:Subcode><env:Value>{escape(sub)}</env:Value></env:Subcode>" if sub else ""
        return (
            "<?xml version='1.0' encoding='UTF-8'?>"
            f'<env:Envelope xmlns:env="{SOAP12_ENV}"><env:Body><env:Fault>'
            f"<env:Code><env:Value>env:{value}</env:Value>{subcode}</env:Code>"
            f'<env:Reason><env:Text xml:lang="en">{escape(message)}</env:Text></env:Reason>'
            "</env:Fault></env:Body></env:Envelope>"
        ).encode()
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f'<soap11env:Envelope xmlns:soap11env="{SOAP11_ENV}"><soap11env:Body>'
        f"<soap11env:Fault><faultcode>soap11env:{escape(code)}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring></soap11env:Fault>"
        "</soap11env:Body></soap11env:Envelope>"
    ).encode()
