"""Finding and creating the profiles that facts are about."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db import dialect_insert, pairs_filter
from hub.models import ExternalId, Profile, ProfileStatus, utcnow


def resolve_profiles(
    session: Session,
    refs: Sequence[dict[str, Any]],
    *,
    fields_before: dict[int, dict[str, Any]] | None = None,
) -> list[Profile]:
    """The profile for each reference (``{email, external_ids, status}``), created if new.

    ``fields_before``, if given, receives the fields of each profile that existed already,
    by id, as they were before the references' fields were merged: the evaluator tells new
    contacts and changed fields apart with it, at no extra query.

    An external id that is already known wins over the email (it is the stronger identity);
    an unknown external id is attached to the profile found or created. Inserts use
    ``ON CONFLICT DO NOTHING`` so that workers creating the same contact at once agree.
    """
    for ref in refs:
        if not ref.get("email") and not ref.get("external_ids"):
            raise ValueError(f"profile reference {ref!r} has neither email nor external ids")
    emails = {r["email"] for r in refs if r.get("email")}
    pairs = {(s, i) for r in refs for s, i in (r.get("external_ids") or {}).items()}
    by_email, by_ext = _lookup(session, emails, pairs)
    if fields_before is not None:
        for found in (*by_email.values(), *by_ext.values()):
            fields_before[found.id] = dict(found.fields or {})

    new_emails: dict[str, str] = {}
    for ref in refs:
        if _find(ref, by_email, by_ext) is None and ref.get("email"):
            new_emails.setdefault(ref["email"], ref.get("status") or ProfileStatus.SUBSCRIBED.value)
    if new_emails:
        stmt = dialect_insert(session, Profile.__table__).on_conflict_do_nothing(
            index_elements=["email"]
        )
        session.execute(stmt, [_new_profile_row(e, s) for e, s in new_emails.items()])
        by_email, by_ext = _lookup(session, emails, pairs)
    profiles: list[Profile] = []
    for ref in refs:
        profile = _find(ref, by_email, by_ext)
        if profile is None:  # only external ids, never seen before: a profile without email
            status = ref.get("status") or ProfileStatus.SUBSCRIBED.value
            profile = Profile(email=None, status=status, fields={}, tags=[])
            session.add(profile)
            session.flush()
        profiles.append(profile)
        _attach_external_ids(session, profile, ref, by_ext)
        merge_fields(profile, ref.get("fields") or {})
    return profiles


def merge_fields(profile: Profile, fields: dict[str, Any]) -> list[str]:
    """Copy the fields a source sent about a contact onto its profile; return the changed names.

    A fact's ``profile.fields`` is what its source knows now (a shop's first name, an ERP's
    status), so it is applied before the rules see the profile.
    """
    current = dict(profile.fields or {})
    changed = [k for k, v in fields.items() if current.get(k, _UNSET) != v]
    if changed:
        current.update({k: fields[k] for k in changed})
        profile.fields = current
    return changed


_UNSET = object()


def _new_profile_row(email: str, status: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "email": email,
        "status": status,
        "fields": {},
        "tags": [],
        "created_at": now,
        "updated_at": now,
    }


def _lookup(
    session: Session, emails: set[str], pairs: set[tuple[str, str]]
) -> tuple[dict[str, Profile], dict[tuple[str, str], Profile]]:
    by_email: dict[str, Profile] = {}
    by_ext: dict[tuple[str, str], Profile] = {}
    if emails:
        for p in session.scalars(select(Profile).where(Profile.email.in_(emails))):
            by_email[p.email] = p  # type: ignore[index]
    if pairs:
        rows = session.execute(
            select(ExternalId.source, ExternalId.external_id, Profile)
            .join(Profile, Profile.id == ExternalId.profile_id)
            .where(*pairs_filter(ExternalId.source, ExternalId.external_id, pairs))
        )
        for source, ext_id, profile in rows:
            if (source, ext_id) in pairs:
                by_ext[(source, ext_id)] = profile
    return by_email, by_ext


def _find(
    ref: dict[str, Any], by_email: dict[str, Profile], by_ext: dict[tuple[str, str], Profile]
) -> Profile | None:
    for pair in (ref.get("external_ids") or {}).items():
        if pair in by_ext:
            return by_ext[pair]
    return by_email.get(ref.get("email") or "")


def _attach_external_ids(
    session: Session, profile: Profile, ref: dict[str, Any], by_ext: dict[tuple[str, str], Profile]
) -> None:
    missing = [
        {"profile_id": profile.id, "source": s, "external_id": i}
        for s, i in (ref.get("external_ids") or {}).items()
        if (s, i) not in by_ext
    ]
    if missing:
        stmt = dialect_insert(session, ExternalId.__table__).on_conflict_do_nothing(
            index_elements=["source", "external_id"]
        )
        session.execute(stmt, missing)
        for row in missing:
            by_ext[(row["source"], row["external_id"])] = profile
