"""SOAP API (spyne) at ``/soap``, over the same service layer as the REST profile API.

:mod:`hub.soap.compat` must run before spyne is imported (spyne 2.14 on Python 3.12), so
this package installs it first and imports everything spyne-related after.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from hub.soap import compat

compat.install()

MOUNT = "/soap"


def init_app(app: Flask) -> None:
    """Serve the SOAP application at ``/soap`` (WSDL at ``/soap?wsdl``) beside Flask."""
    from hub.soap.app import build

    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {MOUNT: build(app)})  # type: ignore[method-assign]
