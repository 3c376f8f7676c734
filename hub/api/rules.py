"""``/api/v1/rules``: the analysts' endpoints.

``POST /api/v1/rules/simulate``  what the rules would do with a fact, with no side effect
``POST /api/v1/rules/reload``    check the rule directory; load it only if it is valid
``GET  /api/v1/rules``           the running rule set (version, rules, last reload error)

Each first reloads this web process's rules if their files changed (the one reload path,
:meth:`hub.runtime.Runtime.reload_rules`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from hub import jsoncodec, runtime
from hub.analysis.simulate import simulate
from hub.api.auth import require_api_key
from hub.facts.schema import validate_facts
from hub.rules.engine import RuleEngine
from hub.rules.exceptions import RuleFileError
from hub.times import parse_time
from hub.web import json_error as error

bp = Blueprint("api_rules", __name__, url_prefix="/api/v1")


def current_engine() -> tuple[RuleEngine | None, list[dict[str, Any]]]:
    """This web process's engine, and the problems of the rule files as they are now.

    The engine is reloaded first if the rule files changed and are valid.
    """
    rt = runtime.of(current_app)
    problems = [p.as_dict() for p in rt.reload_rules()]
    try:
        return rt.engine, problems
    except RuleFileError:
        return None, problems


def _body() -> Any:
    try:
        return jsoncodec.loads(request.get_data(cache=False), max_depth=jsoncodec.MAX_REQUEST_DEPTH)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None


@bp.post("/rules/simulate")
@require_api_key
def simulate_fact() -> Any:
    """Body ``{"fact": {...}, "profile": {...}?, "now": "ISO date"?}``; nothing is stored."""
    try:
        body = _body()
    except ValueError as exc:
        return error(400, "malformed_json", str(exc))
    if not isinstance(body, dict) or not isinstance(body.get("fact"), dict):
        return error(400, "invalid_request", "body must be an object with 'fact'")
    facts, errors = validate_facts([body["fact"]])
    if errors:
        return error(
            400,
            "invalid_fact",
            "the fact is not valid",
            errors=[{"field": f"fact.{e.field}", "message": e.message} for e in errors],
        )
    profile = body.get("profile")
    if profile is not None and not isinstance(profile, dict):
        return error(400, "invalid_request", "'profile' must be an object")
    now = None
    if body.get("now") is not None:
        now = parse_time(body["now"])
        if now is None:
            return error(400, "invalid_request", "'now' must be an ISO date/time")
    engine, problems = current_engine()
    if engine is None:
        return error(409, "invalid_rules", "the rule files are invalid", errors=problems)
    with runtime.of(current_app).db.session() as session:
        result = simulate(engine, facts[0], profile, session=session, now=now)
        session.rollback()  # reading only: make sure nothing is written
    if problems:
        result["rules_warning"] = {
            "message": "rule files changed but are invalid",
            "errors": problems,
        }
    return jsonify(result)


@bp.post("/rules/reload")
@require_api_key
def reload_rules() -> Any:
    """Check the rule directory and load it if valid; else keep the last valid set running."""
    engine, problems = current_engine()
    if problems:
        return error(
            422,
            "invalid_rules",
            f"{len(problems)} problem(s); the running rules stay in place",
            errors=problems,
            running_version=engine.ruleset.version if engine else None,
        )
    assert engine is not None
    return jsonify(
        {
            "version": engine.ruleset.version,
            "rules": len(engine.ruleset.rules),
            "message": "rules are valid; workers load them before their next batch",
        }
    )


@bp.get("/rules")
@require_api_key
def list_rules() -> Any:
    """The rules of the loaded rule set, and the problems of the rule files.

    ``errors`` are the problems of the files as they are now; ``worker_error`` the last ones a
    process of this installation reported. Without a valid rule set, ``version`` is null and
    ``rules`` empty.
    """
    engine, problems = current_engine()
    last_error = runtime.of(current_app).rules_error()
    return jsonify(
        {
            "version": engine.ruleset.version if engine else None,
            "rules": [
                {
                    "name": r.name,
                    "file": r.file,
                    "line": r.line,
                    "fact": r.fact_pattern,
                    "priority": r.priority,
                    "actions": [a.name for a in r.actions],
                }
                for r in (engine.ruleset.rules if engine else ())
            ],
            "errors": problems,
            "worker_error": last_error,
        }
    )
