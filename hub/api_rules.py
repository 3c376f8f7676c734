"""REST endpoints for analysts: simulate a fact, reload the rules, a profile's timeline.

``POST /api/v1/rules/simulate``  what the rules would do with a fact, with no side effect
``POST /api/v1/rules/reload``    check the rule directory; load it only if it is valid
``GET  /api/v1/rules``           the running rule set (version, rules, last reload error)
``GET  /api/v1/profiles/<id>/timeline``  facts, firings, scheduled and done actions, mails
``DELETE /api/v1/followups/<job_id>``    cancel a scheduled follow-up
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from sqlalchemy import select

from hub.api import error
from hub.auth import require_api_key
from hub.db import get_db
from hub.facts.schema import validate_facts
from hub.models import ActionRun, Fact, Message, Profile, RuleFiring
from hub.rules.conditions import parse_time
from hub.rules.engine import RuleEngine, directory_fingerprint
from hub.rules.reader import check_rules

bp = Blueprint("api_rules", __name__, url_prefix="/api/v1")
_ENGINE = "hub.rules_engine"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def _settings() -> Any:
    return current_app.config["HUB_SETTINGS"]


def current_engine() -> tuple[RuleEngine | None, list[dict[str, Any]]]:
    """This web process' engine: reloaded when the rule files change and are valid."""
    rules_dir = _settings().rules_dir
    fingerprint = directory_fingerprint(rules_dir)
    engine: RuleEngine | None = current_app.extensions.get(_ENGINE)
    if engine is not None and engine.fingerprint == fingerprint:
        return engine, []
    ruleset, problems = check_rules(rules_dir)
    if problems:
        return engine, [p.as_dict() for p in problems]
    engine = RuleEngine(ruleset)
    engine.fingerprint = fingerprint
    current_app.extensions[_ENGINE] = engine
    return engine, []


def _body() -> Any:
    try:
        return json.loads(request.get_data(cache=False) or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not valid JSON: {exc}") from None


@bp.post("/rules/simulate")
@require_api_key
def simulate_fact() -> Any:
    """Body ``{"fact": {...}, "profile": {...}?, "now": "ISO date"?}``; nothing is stored."""
    from hub.simulate import simulate

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
    with get_db().session() as session:
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
    redis = current_app.extensions["hub.redis"]
    key = f"{_settings().redis_prefix}:rules:error"
    if problems:
        redis.set(
            key,
            "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in problems),
        )
        return error(
            422,
            "invalid_rules",
            f"{len(problems)} problem(s); the running rules stay in place",
            errors=problems,
            running_version=engine.ruleset.version if engine else None,
        )
    redis.delete(key)
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
    engine, problems = current_engine()
    redis = current_app.extensions["hub.redis"]
    last_error = redis.get(f"{_settings().redis_prefix}:rules:error")
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
            "worker_error": last_error.decode() if last_error else None,
        }
    )


@bp.get("/profiles/<int:profile_id>/timeline")
@require_api_key
def timeline(profile_id: int) -> Any:
    """Everything that happened to a profile, in order: why did this contact get this mail?"""
    with get_db().session() as session:
        if session.get(Profile, profile_id) is None:
            return error(404, "not_found", f"no profile with id {profile_id}")
        return jsonify({"profile_id": profile_id, "events": profile_timeline(session, profile_id)})


def profile_timeline(session: Any, profile_id: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    facts = list(session.scalars(select(Fact).where(Fact.profile_id == profile_id)))
    for f in facts:
        events.append(
            {
                "at": f.occurred_at.isoformat(),
                "kind": "fact",
                "fact_id": f.id,
                "type": f.type,
                "source": f.source,
                "status": f.status,
                "data": f.data,
            }
        )
    firings = list(session.scalars(select(RuleFiring).where(RuleFiring.profile_id == profile_id)))
    job_ids = [j["job_id"] for r in firings for j in r.jobs]
    done = (
        {
            a.job_id: a
            for a in session.scalars(select(ActionRun).where(ActionRun.job_id.in_(job_ids)))
        }
        if job_ids
        else {}
    )
    mails = {
        m.job_id: m
        for m in session.scalars(select(Message).where(Message.profile_id == profile_id))
    }
    for r in firings:
        events.append(
            {
                "at": r.fired_at.isoformat(),
                "kind": "firing",
                "rule": r.rule_name,
                "rule_file": r.rule_file,
                "ruleset_version": r.ruleset_version,
                "fact_id": r.fact_id,
                "jobs": [j["job_id"] for j in r.jobs],
            }
        )
        for j in r.jobs:
            run = done.get(j["job_id"])
            mail = mails.get(j["job_id"])
            state = "skipped" if "skipped" in j else "pending"
            if run is not None:
                state = run.action if run.action in ("cancelled",) or ":" in run.action else "done"
            if mail is not None:
                state = mail.status
            if "run_at" in j:
                events.append(
                    {
                        "at": j["run_at"],
                        "kind": "scheduled",
                        "rule": r.rule_name,
                        "action": j["action"],
                        "job_id": j["job_id"],
                        "state": state,
                    }
                )
            elif run is not None and mail is None:
                events.append(
                    {
                        "at": run.finished_at.isoformat(),
                        "kind": "action",
                        "rule": r.rule_name,
                        "action": j["action"],
                        "job_id": j["job_id"],
                        "state": state,
                    }
                )
    for m in mails.values():
        events.append(
            {
                "at": (m.sent_at or m.created_at).isoformat(),
                "kind": "mail",
                "rule": m.rule_name,
                "template": m.template,
                "subject": m.subject,
                "status": m.status,
                "error": m.error,
                "job_id": m.job_id,
                "fact_id": m.fact_id,
            }
        )
    order = {"fact": 0, "firing": 1, "action": 2, "mail": 3, "scheduled": 4}
    events.sort(
        key=lambda e: (parse_time(e["at"]) or datetime.min.replace(tzinfo=UTC), order[e["kind"]])
    )
    return events


@bp.delete("/followups/<job_id>")
@require_api_key
def cancel_followup(job_id: str) -> Any:
    """Cancel a scheduled follow-up (its job id is on the timeline)."""
    from hub.followups import cancel
    from hub.runtime import Runtime

    rt = Runtime(settings=_settings(), db=get_db(), redis=current_app.extensions["hub.redis"])
    if not job_id.startswith("act-"):
        return error(404, "not_found", f"{job_id!r} is not a follow-up job id")
    if cancel(rt, job_id):
        return jsonify({"job_id": job_id, "cancelled": True})
    return error(409, "not_cancellable", f"{job_id} already ran, was skipped or was cancelled")
