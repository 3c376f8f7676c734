"""Endpoints without an API key: ``/healthz`` and connector webhooks (verified by signature).

Later also the pages contacts reach through signed links (unsubscribe, forms).
"""

from __future__ import annotations

from flask import Flask

from hub.public import health, webhooks


def init_app(app: Flask) -> None:
    """Register every public blueprint."""
    for module in (health, webhooks):
        app.register_blueprint(module.bp)
