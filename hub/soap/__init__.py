"""SOAP API (spyne) at ``/soap``, over the same service layer as the REST profile API.

:mod:`hub.soap.compat` must run before spyne is imported (spyne 2.14 on Python 3.12), so
this package installs it first and imports everything spyne-related after.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from hub.soap import compat

compat.install()

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

MOUNT = "/soap"  # SOAP 1.1; WSDL at /soap?wsdl
MOUNT_12 = "/soap12"  # the same services in SOAP 1.2; WSDL at /soap12?wsdl


def init_app(app: Flask) -> None:
    """Serve the SOAP services beside Flask, in SOAP 1.1 and in SOAP 1.2."""
    from hub.soap.app import build

    mounts: dict[str, WSGIApplication] = {MOUNT: build(app, "1.1"), MOUNT_12: build(app, "1.2")}
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, mounts)  # type: ignore[method-assign]
