"""The REST API: JSON under ``/api/v1`` (and connector management under ``/connectors``).

Every endpoint is behind an API key; there is one module per resource.
"""

from __future__ import annotations

from flask import Flask

from hub.api import connectors, facts, followups, openapi, profiles, rules


def init_app(app: Flask) -> None:
    """Register every resource's blueprint."""
    for module in (facts, profiles, rules, followups, connectors, openapi):
        app.register_blueprint(module.bp)
