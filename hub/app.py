"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from hub import config, db
from hub.config import Settings
from hub.facts.ingest import Waker
from hub.queue import connect


def create_app(settings: Settings | None = None) -> Flask:
    """Build the hub's WSGI app; settings come from ``HUB_*`` variables unless given."""
    settings = settings or config.from_env()
    app = Flask(__name__)
    app.config["HUB_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SECRET_KEY"] = settings.secret_key
    db.init_app(app, settings)
    app.extensions["hub.redis"] = connect(settings)
    app.extensions["hub.waker"] = Waker(settings, lambda: app.extensions["hub.redis"])

    from hub import api, api_profiles, api_rules, connectors_web, health, soap

    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(connectors_web.bp)
    api_profiles.init_app(app)
    api_rules.init_app(app)
    soap.init_app(app)  # mounts the spyne WSGI app at /soap and /soap12
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(exc: HTTPException) -> Any:
    """Every error answer is JSON, with a message a caller can act on."""
    message = exc.description or exc.name
    if exc.code == 413:
        message = "request body too large"
    response = jsonify({"error": exc.name.lower().replace(" ", "_"), "message": message})
    response.status_code = exc.code or 500
    return response
