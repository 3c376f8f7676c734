"""``/api/v1/facts``: post facts, and read a fact's fate (its firings and their actions)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from hub import jsoncodec, runtime
from hub.api.auth import forbidden_sources, require_api_key
from hub.facts.ingest import store_facts
from hub.facts.schema import validate_facts
from hub.models import ActionRun, ActionStatus, Fact, Message
from hub.web import ids_in_range
from hub.web import json_error as error

bp = Blueprint("api_facts", __name__, url_prefix="/api/v1")
bp.url_value_preprocessor(ids_in_range)  # /facts/<id> past 64 bits: 404, not an overflow


@bp.post("/facts")
@require_api_key
def post_facts() -> Any:
    """Store one fact or a list; 202 only once they are committed."""
    rt = runtime.of(current_app)
    settings = rt.settings
    try:
        body = jsoncodec.loads(request.get_data(cache=False), max_depth=jsoncodec.MAX_REQUEST_DEPTH)
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, "malformed_json", f"body is not valid JSON: {exc}")
    items = body if isinstance(body, list) else [body]
    if not isinstance(body, list | dict):
        return error(400, "invalid_facts", "body must be a fact object or a list of facts")
    if not items:
        return error(400, "invalid_facts", "the list of facts is empty")
    if len(items) > settings.max_facts_per_request:
        return error(
            413,
            "too_many_facts",
            f"{len(items)} facts in one request; the maximum is {settings.max_facts_per_request}",
        )
    facts, errors = validate_facts(items)
    if errors:
        return error(
            400,
            "invalid_facts",
            f"{len(errors)} problem(s); nothing was stored",
            errors=[e.model_dump() for e in errors],
        )
    if (refused := forbidden_sources(facts)) is not None:
        return refused
    stored = store_facts(rt.db, facts)
    rt.wake()
    return jsonify({"facts": [{"id": s.id, "status": s.status} for s in stored]}), 202


@bp.get("/facts/<int:fact_id>")
@require_api_key
def get_fact(fact_id: int) -> Any:
    """A fact, its status, the rules it fired and the state of their jobs."""
    with runtime.of(current_app).db.session() as session:
        fact = session.get(Fact, fact_id)
        if fact is None:
            return error(404, "not_found", f"no fact with id {fact_id}")
        keys = [j["job_id"] for f in fact.firings for j in f.jobs]
        ledger: dict[str, tuple[str, str | None]] = {}
        if keys:
            found = select(ActionRun.job_id, ActionRun.status, ActionRun.outcome).where(
                ActionRun.job_id.in_(keys)
            )
            ledger = {
                job_id: (status, outcome) for job_id, status, outcome in session.execute(found)
            }
        body = fact.as_dict() | {
            "status": fact.status,
            "profile_id": fact.profile_id,
            "received_at": fact.received_at.isoformat(),
            "evaluated_at": fact.evaluated_at.isoformat() if fact.evaluated_at else None,
            "error": fact.error,
            "firings": [
                {
                    "rule": f.rule_name,
                    "rule_file": f.rule_file,
                    "ruleset_version": f.ruleset_version,
                    "fired_at": f.fired_at.isoformat(),
                    "jobs": [j | action_state(j, ledger) for j in f.jobs],
                }
                for f in fact.firings
            ],
            "messages": [
                _message(m)
                for m in session.scalars(select(Message).where(Message.fact_id == fact_id))
            ],
        }
    return jsonify(body)


def action_state(
    record: dict[str, Any], ledger: dict[str, tuple[str, str | None]]
) -> dict[str, Any]:
    """Where one action of a firing stands, and what it did: its outbox row first.

    A settled action says how it ended (``finished``, ``skipped``, ``cancelled``, ``failed``,
    ``unknown``) and its ``outcome`` ("applied (nothing changed)", "sent <id>", the consent
    refusal...). A planned one shows the state of the RQ job that carries it: its own (a
    follow-up, or an action retrying alone) or its batch job; ``planned`` when Redis has
    neither (the sweep enqueues it again).
    """
    status, outcome = ledger.get(record["job_id"], (None, None))
    if status is None and "skipped" in record:
        return {"status": "failed", "outcome": record["skipped"]}
    if status is not None and status != ActionStatus.PLANNED.value:
        word = "finished" if status == ActionStatus.DONE.value else status
        return {"status": word, "outcome": outcome}
    if status is None:  # fired before the outbox, and no ledger row yet
        return {"status": _job_status(record) or "expired", "outcome": None}
    live = _job_status(record)  # a job that ended without settling it: the sweep takes over
    if live not in ("queued", "started", "scheduled", "deferred"):
        live = ActionStatus.PLANNED.value
    return {"status": live, "outcome": None}


def _job_status(record: dict[str, Any]) -> str | None:
    """The state of the RQ job carrying an action: its own, else its batch job's."""
    for job_id in (record["job_id"], record.get("batch_job")):
        if not job_id:
            continue
        try:
            status = Job.fetch(job_id, connection=runtime.of(current_app).redis).get_status()
            return str(getattr(status, "value", status) or "unknown")
        except NoSuchJobError:
            continue
        except Exception:  # Redis down: the fact's story is still worth showing
            return "unknown"
    return None


def _message(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "template": m.template,
        "to": m.to_address,
        "subject": m.subject,
        "status": m.status,
        "message_id": m.message_id,
        "error": m.error,
        "sent_at": m.sent_at.isoformat() if m.sent_at else None,
    }
