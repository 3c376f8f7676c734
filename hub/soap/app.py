"""The spyne application behind ``/soap``: SOAP 1.1, document/literal, WSDL at ``/soap?wsdl``.

Built once per Flask app (:func:`build`); each call gets its :class:`ProfileService` in
``ctx.udc`` after its ``ApiKey`` header has been checked (constant-time, like REST keys).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from spyne import Application
from spyne import const as spyne_const
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11, Soap12
from spyne.server.wsgi import WsgiApplication

from connectors.registry import registry
from hub import runtime
from hub.apikeys import find_api_key, source_refusal
from hub.exceptions import InputError
from hub.profiles.service import ProfileService
from hub.soap.faults import fault_code, fault_text
from hub.soap.service import DatabaseService, ProfileOperations
from hub.soap.types import TNS
from hub.soap.xmlguard import XmlGuard

log = logging.getLogger(__name__)
SOURCE = "soap"
POSTS_FACTS = frozenset({"Profile_postFact"})  # scoped keys must be allowed the source soap


class HubSoapApplication(Application):
    """spyne's Application, with the hub's errors turned into faults with stable codes."""

    def call_wrapper(self, ctx: Any) -> Any:
        """Run the operation; InputError -> ``Client.<Code>``, a bug -> ``Server.InternalError``."""
        try:
            return super().call_wrapper(ctx)
        except InputError as exc:
            raise Fault(faultcode=fault_code(exc.code), faultstring=fault_text(exc)) from None
        except Fault:
            raise
        except Exception:
            log.exception("SOAP operation %s failed", ctx.method_request_string)
            raise Fault(
                faultcode="Server.InternalError",
                faultstring="the hub could not complete the request; the error was logged",
            ) from None


def build(flask_app: Flask, soap_version: str = "1.1") -> XmlGuard:
    """The WSGI app to mount for one SOAP version: XML guard, then spyne, then the services."""
    rt = runtime.of(flask_app)
    settings = rt.settings

    def on_method_call(ctx: Any) -> None:
        db = rt.db
        header = ctx.in_header
        key = (getattr(header, "key", None) or "").strip()
        if not key:
            raise Fault(
                faultcode="Client.MissingApiKey",
                faultstring="ApiKey: send the SOAP header <ApiKey><key>...</key></ApiKey>",
            )
        with db.engine.connect() as connection:
            record = find_api_key(connection, key)
        if record is None:
            raise Fault(
                faultcode="Client.InvalidApiKey", faultstring="ApiKey: invalid or revoked key"
            )
        if ctx.descriptor.name in POSTS_FACTS:  # the facts it posts are of source "soap"
            why = source_refusal(record, SOURCE, registry().names)
            if why is not None:
                raise Fault(faultcode="Client.SourceNotAllowed", faultstring=f"source: {why}")
        ctx.udc = ProfileService(db, settings, rt.redis, SOURCE)

    protocol = Soap12 if soap_version == "1.2" else Soap11
    application = HubSoapApplication(
        [DatabaseService, ProfileOperations],
        tns=TNS,
        name="ContactHub",
        in_protocol=protocol(
            validator="lxml", resolve_entities=False, load_dtd=False, no_network=True
        ),
        out_protocol=protocol(),
    )
    application.event_manager.add_listener("method_call", on_method_call)
    # spyne runs a full gc.collect() after a call at most once a second, to close the files
    # of attachments; the hub takes no attachments, and in a web process holding SQLAlchemy's
    # and lxml's objects that collection cost ~100 ms, about 15% of SOAP throughput.
    spyne_const.MIN_GC_INTERVAL = float("inf")
    # spyne logs every Client fault with a traceback at ERROR; a caller's mistake is not the
    # hub's error, and ``Server`` faults are still logged (by spyne and by call_wrapper).
    logging.getLogger("spyne.application.client").setLevel(logging.CRITICAL)
    # it would log a refused document whole, API key header included
    logging.getLogger("spyne.protocol.xml.invalid").setLevel(logging.CRITICAL)
    operations = frozenset(m.name for s in application.services for m in s.public_methods.values())
    return XmlGuard(
        WsgiApplication(application),
        max_bytes=settings.max_body_bytes,
        operations=operations,
        soap_version=soap_version,
    )
