"""REST ``/api/v1/profiles``: the profile operations of the SOAP API, as JSON.

Both are adapters over :class:`hub.profiles.service.ProfileService`, so they accept the same
input and give the same errors: an :class:`InputError` answers ``{"error": code, "field":
..., "message": ...}`` with its status (400, 404 or 409), where SOAP gives ``Client.<Code>``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from hub import jsoncodec, runtime
from hub.api.auth import forbidden_source, require_api_key
from hub.exceptions import InputError
from hub.models import Profile
from hub.profiles.search import Requirement
from hub.profiles.service import ProfileService
from hub.profiles.timeline import profile_timeline
from hub.web import ids_in_range, json_error

bp = Blueprint("api_profiles", __name__, url_prefix="/api/v1/profiles")
bp.url_value_preprocessor(ids_in_range)  # /profiles/<id> past 64 bits: 404, not an overflow
SOURCE = "api"


@bp.errorhandler(InputError)
def _input_error(exc: InputError) -> Any:
    response = jsonify({"error": exc.code, "field": exc.field, "message": exc.message})
    response.status_code = exc.status
    return response


def service() -> ProfileService:
    """The profile service on behalf of the REST API."""
    rt = runtime.of(current_app)
    return ProfileService(rt.db, rt.settings, rt.redis, SOURCE)


def body(*required: str) -> dict[str, Any]:
    """The JSON object sent; InputError naming the first required member missing."""
    try:
        data = jsoncodec.loads(request.get_data(cache=False), max_depth=jsoncodec.MAX_REQUEST_DEPTH)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError("malformed_json", "", f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("invalid_value", "", "the body must be a JSON object")
    for name in required:
        if name not in data:
            raise InputError("missing_value", name, "required")
    return data


def requirements(data: dict[str, Any]) -> list[Requirement]:
    """The ``requirements`` of a request body, as the search takes them.

    A number or boolean given as ``value`` is passed on as its text; an InputError names the
    item at fault (``requirements[1].operator``).
    """
    items = data.get("requirements", [])
    if not isinstance(items, list):
        raise InputError("invalid_value", "requirements", "must be a list")
    out = []
    for index, item in enumerate(items):
        where = f"requirements[{index}]"
        if not isinstance(item, dict):
            raise InputError("invalid_value", where, "must be an object")
        unknown = set(item) - {"fieldname", "value", "operator", "casesensitive"}
        if unknown:
            raise InputError("invalid_value", f"{where}.{sorted(unknown)[0]}", "unknown member")
        value = item.get("value")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        elif value is not None and not isinstance(value, str):
            raise InputError("invalid_value", f"{where}.value", "must be text or a number")
        out.append(
            Requirement(
                fieldname=_typed(item, "fieldname", str, where, ""),
                value=value,  # type: ignore[arg-type]  # None is refused by the service
                operator=_typed(item, "operator", str, where, "="),
                casesensitive=_typed(item, "casesensitive", bool, where, False),
            )
        )
    return out


def _typed(item: dict[str, Any], name: str, kind: type, where: str, default: Any) -> Any:
    value = item.get(name, default)
    if not isinstance(value, kind):
        raise InputError("invalid_value", f"{where}.{name}", f"must be a {kind.__name__}")
    return value


def _int_arg(name: str, default: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError("invalid_value", name, f"{raw!r} is not a whole number") from None


@bp.get("")
@require_api_key
def find_profile() -> Any:
    """The profile with ``?email=`` (any case)."""
    if not (request.args.get("email") or "").strip():
        raise InputError("invalid_query", "email", "give ?email=<address>")
    return jsonify(service().find_by_email(request.args["email"]))


@bp.post("")
@require_api_key
def create_profile() -> Any:
    """Create a profile (``Database_createProfile``); 409 if the email is taken."""
    data = body("email")
    profile = service().create(
        data["email"],
        _object(data, "fields"),
        _list(data, "tags"),
        data.get("status"),
        data.get("external_ids"),
        data.get("consent"),
    )
    return jsonify(profile), 201


@bp.post("/upsert")
@require_api_key
def update_profiles() -> Any:
    """Update all profiles meeting the requirements, or create one (``Database_updateProfiles``)."""
    data = body("requirements", "fields")
    create = data.get("create", False)
    if not isinstance(create, bool):
        raise InputError("invalid_value", "create", "must be true or false")
    result = service().update_profiles(requirements(data), data["fields"], create)
    status = 201 if result.created else 200
    return jsonify({"created": result.created, "profiles": result.profiles}), status


@bp.post("/search")
@require_api_key
def search_profiles() -> Any:
    """Profiles meeting every requirement, a page at a time (``Database_searchProfiles``)."""
    data = body()
    start, length = data.get("start", 0), data.get("length")
    for name, value in (("start", start), ("length", length)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InputError("invalid_value", name, "must be a whole number")
    page = service().search(requirements(data), start, length)
    return jsonify(
        {"start": page.start, "length": page.length, "total": page.total, "profiles": page.profiles}
    )


@bp.get("/fields")
@require_api_key
def known_fields() -> Any:
    """Every field name a requirement may use (``Database_fields``)."""
    return jsonify({"fields": [{"name": n, "kind": k} for n, k in service().known_fields()]})


@bp.get("/<int:profile_id>")
@require_api_key
def get_profile(profile_id: int) -> Any:
    """The profile with this id (``Profile_get``); 404 if there is none."""
    return jsonify(service().get(profile_id))


@bp.patch("/<int:profile_id>")
@require_api_key
def update_fields(profile_id: int) -> Any:
    """Set custom fields (``Profile_updateFields``)."""
    return jsonify(service().update_fields(profile_id, body("fields")["fields"]))


@bp.post("/<int:profile_id>/tags")
@require_api_key
def change_tags(profile_id: int) -> Any:
    """Add and remove tags: ``{"add": [...], "remove": [...]}``."""
    data = body()
    return jsonify(service().change_tags(profile_id, _list(data, "add"), _list(data, "remove")))


@bp.post("/<int:profile_id>/unsubscribe")
@require_api_key
def unsubscribe(profile_id: int) -> Any:
    """Withdraw the profile's consent (``Profile_unsubscribe``); answers the profile."""
    return jsonify(service().unsubscribe(profile_id))


@bp.get("/<int:profile_id>/consent")
@require_api_key
def consent_ledger(profile_id: int) -> Any:
    """The profile's consent ledger, newest first: every statement, its proof and outcome."""
    svc = service()
    return jsonify({"profile_id": profile_id, "consent": svc.consent_ledger(profile_id)})


@bp.post("/<int:profile_id>/consent")
@require_api_key
def set_consent(profile_id: int) -> Any:
    """State consent with its proof: ``{"status", "proof", "explicit", "at", "ip", ...}``."""
    return jsonify(service().set_consent(profile_id, body("status", "proof")))


@bp.delete("/<int:profile_id>")
@require_api_key
def delete_profile(profile_id: int) -> Any:
    """Delete a profile (``Profile_remove``); the ``profile.deleted`` fact records it."""
    fact_id = service().delete(profile_id)
    return jsonify({"deleted": profile_id, "fact": fact_id})


@bp.post("/<int:profile_id>/facts")
@require_api_key
def post_fact(profile_id: int) -> Any:
    """Store a fact about this profile for the rules: ``{"type", "data", "source_id"}``."""
    data = body("type")
    payload = _object(data, "data")
    if (refused := forbidden_source(SOURCE)) is not None:
        return refused
    fact_id, status = service().post_fact(profile_id, data["type"], payload, data.get("source_id"))
    return jsonify({"id": fact_id, "status": status}), 202


@bp.get("/<int:profile_id>/timeline")
@require_api_key
def timeline(profile_id: int) -> Any:
    """Everything that happened to a profile, in order: why did this contact get this mail?"""
    with runtime.of(current_app).db.session() as session:
        if session.get(Profile, profile_id) is None:
            return json_error(404, "not_found", f"no profile with id {profile_id}")
        return jsonify({"profile_id": profile_id, "events": profile_timeline(session, profile_id)})


def _list(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError("invalid_value", name, "must be a list")
    return value


def _object(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError("invalid_value", name, "must be an object")
    return value
