"""Finding and creating the profiles that facts are about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from hub.db import bulk_update, dialect_insert, one_of, pairs_filter
from hub.models import ExternalId, Profile, ProfileStatus, profile_dict
from hub.times import utcnow


def resolve_profiles(session: Session, refs: Sequence[dict[str, Any]]) -> list[Profile]:
    """The profile for each reference (``{email, external_ids, status}``), created if new.

    An external id that is already known wins over the email (it is the stronger identity);
    an unknown external id is attached to the profile found or created. Inserts use
    ``ON CONFLICT DO NOTHING`` so that workers creating the same contact at once agree.
    """
    emails, pairs = _keys(refs)
    by_email, by_ext = _lookup(session, emails, pairs)
    if _insert_new(session, refs, by_email, by_ext):
        by_email, by_ext = _lookup(session, emails, pairs)
    profiles: list[Profile] = []
    for ref in refs:
        profile = _find(ref, by_email, by_ext)
        if profile is None:  # only external ids, never seen before: a profile without email
            status = ProfileStatus.UNCONFIRMED.value  # consent is applied by its statement
            profile = Profile(email=None, status=status, fields={}, tags=[])
            session.add(profile)
            session.flush()
        profiles.append(profile)
        _attach_external_ids(session, profile, ref, by_ext)
        merge_fields(profile, ref.get("fields") or {})
    return profiles


@dataclass(slots=True)
class ProfileRow:
    """A profile read as a plain row: what evaluating a batch needs, without ORM objects.

    Loading ORM objects cost about 0.1 ms a profile, a large share of a batch's evaluation
    (docs/benchmarks.md); the evaluator reads and merges fields and nothing else.
    """

    id: int
    email: str | None
    status: str
    fields: dict[str, Any]
    tags: list[str]
    created_at: datetime | None
    updated_at: datetime | None
    external_ids: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The profile as rules and templates see it (as :meth:`Profile.as_dict` gives it)."""
        return profile_dict(self, self.external_ids)


P = TypeVar("P", Profile, ProfileRow)  # the resolver serves ORM objects and plain rows alike


def resolve_profile_rows(
    session: Session,
    refs: Sequence[dict[str, Any]],
    *,
    fields_before: dict[int, dict[str, Any]],
) -> list[ProfileRow | None]:
    """:func:`resolve_profiles` for a batch of facts, with plain rows and bulk statements.

    ``fields_before`` receives the fields of each profile that existed already, by id, as they
    were before the references' fields were merged: the evaluator tells new contacts and
    changed fields apart with it, at no extra query.

    Same rules as :func:`resolve_profiles`: a known external id wins over the email, unknown
    external ids are attached, the references' fields are merged (one bulk ``UPDATE`` for the
    profiles they changed). A reference with ``create: false`` that names nobody known gets
    ``None``.
    """
    emails, pairs = _keys(refs)
    by_email, by_ext = _lookup_rows(session, emails, pairs)
    for found in (*by_email.values(), *by_ext.values()):
        fields_before[found.id] = dict(found.fields or {})
    if _insert_new(session, refs, by_email, by_ext):
        by_email, by_ext = _lookup_rows(session, emails, pairs)
    rows: list[ProfileRow | None] = []
    changed: dict[int, ProfileRow] = {}
    for ref in refs:
        row = _find(ref, by_email, by_ext)
        if row is None and ref.get("create") is False:
            rows.append(None)  # nobody known, and the fact may not create anyone
            continue
        if row is None:  # only external ids, never seen before: a profile without email
            row = _insert_without_email(session)
        rows.append(row)
        for source, ext_id in (ref.get("external_ids") or {}).items():
            row.external_ids.setdefault(source, ext_id)
        _attach_external_ids(session, row, ref, by_ext)
        if merge_fields(row, ref.get("fields") or {}):
            changed[row.id] = row
    if changed:
        now = utcnow()
        bulk_update(
            session,
            Profile,
            [{"id": r.id, "fields": r.fields, "updated_at": now} for r in changed.values()],
        )
        for row in changed.values():
            row.updated_at = now
    return rows


def _keys(refs: Sequence[dict[str, Any]]) -> tuple[set[str], set[tuple[str, str]]]:
    """The emails and ``(source, external id)`` pairs of the references, checked."""
    for ref in refs:
        if not ref.get("email") and not ref.get("external_ids"):
            raise ValueError(f"profile reference {ref!r} has neither email nor external ids")
    emails = {r["email"] for r in refs if r.get("email")}
    pairs = {(s, i) for r in refs for s, i in (r.get("external_ids") or {}).items()}
    return emails, pairs


def _insert_new(
    session: Session,
    refs: Sequence[dict[str, Any]],
    by_email: dict[str, Any],
    by_ext: dict[Any, Any],
) -> bool:
    """Insert a profile for each new email (``ON CONFLICT DO NOTHING``); True if any was new."""
    new_emails = {
        ref["email"]
        for ref in refs
        if ref.get("email")
        and ref.get("create") is not False
        and _find(ref, by_email, by_ext) is None
    }
    if new_emails:
        stmt = dialect_insert(session, Profile.__table__).on_conflict_do_nothing(
            index_elements=["email"]
        )
        # in one order for every worker: two inserting the same new contacts in different
        # orders would each wait for the other's row lock (a deadlock on PostgreSQL)
        rows = [_new_profile_row(e) for e in sorted(new_emails)]
        session.execute(stmt, rows)
    return bool(new_emails)


_PROFILE_COLUMNS = (
    Profile.id,
    Profile.email,
    Profile.status,
    Profile.fields,
    Profile.tags,
    Profile.created_at,
    Profile.updated_at,
)


def _lookup_rows(
    session: Session, emails: set[str], pairs: set[tuple[str, str]]
) -> tuple[dict[str, ProfileRow], dict[tuple[str, str], ProfileRow]]:
    by_id: dict[int, ProfileRow] = {}
    by_email: dict[str, ProfileRow] = {}
    by_ext: dict[tuple[str, str], ProfileRow] = {}
    # Locked for the batch's transaction, in id order (two batches sharing contacts take their
    # locks in the same order): an action job's change committed meanwhile is read, not
    # overwritten by fields merged into an older copy.
    if emails:
        query = (
            select(*_PROFILE_COLUMNS)
            .where(one_of(session, Profile.email, emails))
            .order_by(Profile.id)
            .with_for_update(of=Profile)
        )
        for found_row in session.execute(query):
            row = by_id[found_row[0]] = ProfileRow(*found_row)
            by_email[row.email] = row  # type: ignore[index]
    if pairs:
        found = session.execute(
            select(ExternalId.source, ExternalId.external_id, *_PROFILE_COLUMNS)
            .join(Profile, Profile.id == ExternalId.profile_id)
            .where(*pairs_filter(ExternalId.source, ExternalId.external_id, pairs))
            .order_by(Profile.id)
            .with_for_update(of=Profile)
        )
        for source, ext_id, *values in found:
            if (source, ext_id) in pairs:
                by_ext[(source, ext_id)] = by_id.setdefault(values[0], ProfileRow(*values))
    if by_id:
        known = session.execute(
            select(ExternalId.profile_id, ExternalId.source, ExternalId.external_id).where(
                one_of(session, ExternalId.profile_id, by_id)
            )
        )
        for profile_id, source, ext_id in known:
            by_id[profile_id].external_ids[source] = ext_id
    return by_email, by_ext


def _insert_without_email(session: Session) -> ProfileRow:
    values = _new_profile_row(None)
    profiles = cast(Table, Profile.__table__)
    new_id = session.execute(insert(profiles).returning(Profile.id), values).scalar_one()
    return ProfileRow(id=new_id, **values)


def merge_fields(profile: Profile | ProfileRow, fields: dict[str, Any]) -> list[str]:
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


def _new_profile_row(email: str | None) -> dict[str, Any]:
    """A new profile: no consent known (its statement, if any, is applied after)."""
    now = utcnow()
    return {
        "email": email,
        "status": ProfileStatus.UNCONFIRMED.value,
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
    # locked, as in _lookup_rows: whoever changes the profile next reads this change first
    if emails:
        query = (
            select(Profile)
            .where(Profile.email.in_(emails))
            .order_by(Profile.id)
            .with_for_update(of=Profile)
        )
        for p in session.scalars(query):
            by_email[p.email] = p  # type: ignore[index]
    if pairs:
        rows = session.execute(
            select(ExternalId.source, ExternalId.external_id, Profile)
            .join(Profile, Profile.id == ExternalId.profile_id)
            .where(*pairs_filter(ExternalId.source, ExternalId.external_id, pairs))
            .order_by(Profile.id)
            .with_for_update(of=Profile)
        )
        for source, ext_id, profile in rows:
            if (source, ext_id) in pairs:
                by_ext[(source, ext_id)] = profile
    return by_email, by_ext


def _find(
    ref: dict[str, Any], by_email: dict[str, P], by_ext: dict[tuple[str, str], P]
) -> P | None:
    for pair in (ref.get("external_ids") or {}).items():
        if pair in by_ext:
            return by_ext[pair]
    return by_email.get(ref.get("email") or "")


def _attach_external_ids(
    session: Session, profile: P, ref: dict[str, Any], by_ext: dict[tuple[str, str], P]
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
