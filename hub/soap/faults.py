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


def fault_code(code: str) -> str:
    """``unknown_field`` -> ``Client.UnknownField``."""
    return "Client." + "".join(part.capitalize() for part in code.split("_"))


def fault_text(error: InputError) -> str:
    return f"{error.field}: {error.message}" if error.field else error.message


def fault_document(code: str, message: str) -> bytes:
    """A SOAP 1.1 fault envelope, for refusals made before spyne sees the request."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f'<soap11env:Envelope xmlns:soap11env="{SOAP11_ENV}"><soap11env:Body>'
        f"<soap11env:Fault><faultcode>soap11env:{escape(code)}</faultcode>"
        f"<faultstring>{escape(message)}</faultstring></soap11env:Fault>"
        "</soap11env:Body></soap11env:Envelope>"
    ).encode()
