"""The Flask application factory."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from hub import api, config, public, runtime, soap
from hub.actions import ACTIONS
from hub.config import Settings
from hub.facts.ingest import Waker
from hub.runtime import Runtime
from hub.web import database_unavailable, http_error


def create_app(settings: Settings | None = None) -> Flask:
    """Build the hub's WSGI app; settings come from ``HUB_*`` variables unless given."""
    settings = settings or config.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SECRET_KEY"] = settings.secret_key
    rt = Runtime.build(settings, ACTIONS)
    rt.waker = Waker(settings, lambda: rt.redis)
    runtime.init_app(app, rt)
    api.init_app(app)
    public.init_app(app)
    soap.init_app(app)  # mounts the spyne WSGI app at /soap and /soap12
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(OperationalError, database_unavailable)
    return app
