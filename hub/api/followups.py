"""``DELETE /api/v1/followups/<job_id>``: cancel a scheduled follow-up (ids on the timeline)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from hub import runtime
from hub.actions.followups import UnknownFollowup, cancel
from hub.api.auth import require_api_key
from hub.web import json_error as error

bp = Blueprint("api_followups", __name__, url_prefix="/api/v1")


@bp.delete("/followups/<job_id>")
@require_api_key
def cancel_followup(job_id: str) -> Any:
    """Cancel a scheduled follow-up (its job id is on the timeline)."""
    rt = runtime.of(current_app)
    if not job_id.startswith("act-"):
        return error(404, "not_found", f"{job_id!r} is not a follow-up job id")
    try:
        cancelled = cancel(rt, job_id)
    except UnknownFollowup as exc:
        return error(404, "not_found", str(exc))
    if cancelled:
        return jsonify({"job_id": job_id, "cancelled": True})
    return error(409, "not_cancellable", f"{job_id} already ran, was skipped or was cancelled")
