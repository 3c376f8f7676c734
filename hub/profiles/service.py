"""Profile operations for every API: create, upsert, search, read, change, delete, post a fact.

Every write is a fact on the one fact path (:func:`hub.facts.ingest.store_facts`, then
:func:`hub.facts.ingest.notify`), with ``source`` naming the API (``soap``, ``api``), so rules fire
on it like on any other fact. The change itself is applied to the profile **in the same
transaction** that stores the fact: a caller that reads right after writing sees its write,
and a fact is never stored without its change, nor a change without its fact.

The values written travel in the fact's ``data.fields`` (with ``data.changed`` naming the
fields whose value changed), not in ``profile.fields``: the evaluator merges a fact's
``profile.fields`` into the profile when it evaluates the fact, which for a change already
applied would, at best, do nothing and, when a later write to the same field has been applied
in between, put the older value back until that later fact is evaluated too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from redis import Redis
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.db import Database
from hub.exceptions import ConflictError, InputError, NotFoundError
from hub.facts.ingest import notify, store_facts
from hub.facts.own import (
    OwnFact,
    ProfileCreated,
    ProfileDeleted,
    ProfileTagged,
    ProfileUnsubscribed,
    ProfileUpdated,
)
from hub.facts.schema import (
    EMAIL,
    FACT_TYPE,
    RESERVED_FIELDS,
    ConsentIn,
    FactIn,
    ProfileRef,
    custom_field_error,
)
from hub.models import ConsentOutcome, ExternalId, Fact, FactStatus, Profile, ProfileStatus
from hub.profiles.consent import Statement, apply_statement, ledger, raised_fact
from hub.profiles.resolve import merge_fields, resolve_profiles
from hub.profiles.search import COLUMNS, FieldCatalog, Requirement, build_filter
from hub.times import utcnow

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_TAGS = 100
# Ids and offsets are 64-bit signed integers in both databases (PostgreSQL bigint, SQLite
# INTEGER); a larger number names no profile and starts no page.
MAX_ID = 2**63 - 1
Scalar = str | int | float | bool | None

_catalogs: dict[str, FieldCatalog] = {}


@dataclass(frozen=True)
class Page:
    """One page of a search: Copernica's ``start``/``length``/``total`` and the profiles."""

    start: int
    length: int
    total: int
    profiles: list[dict[str, Any]]


@dataclass(frozen=True)
class Upserted:
    """What ``update_profiles`` did: the profiles it changed, and whether it created one."""

    created: bool
    profiles: list[dict[str, Any]]
    fact_ids: list[int] = field(default_factory=list)


class ProfileService:
    """Profile operations over one database, on behalf of one API (``source``)."""

    def __init__(self, db: Database, settings: Settings, redis: Redis, source: str) -> None:
        self.db = db
        self.settings = settings
        self.redis = redis
        self.source = source
        self.catalog = _catalogs.setdefault(db.url, FieldCatalog(db))

    # -- reads -------------------------------------------------------------------------

    def get(self, profile_id: int) -> dict[str, Any]:
        """The profile with ``profile_id``, or NotFoundError."""
        with self.db.session() as session:
            return _load(session, profile_id).as_dict()

    def find_by_email(self, email: str) -> dict[str, Any]:
        """The profile with ``email`` (any case), or NotFoundError."""
        email = (email or "").strip().lower()
        if not email:
            raise InputError("missing_value", "email", "an email address is required")
        with self.db.session() as session:
            profile = session.scalar(select(Profile).where(Profile.email == email))
            if profile is None:
                raise NotFoundError("email", f"no profile with email {email}")
            return profile.as_dict()

    def search(
        self, requirements: Sequence[Requirement], start: int = 0, length: int | None = None
    ) -> Page:
        """Profiles meeting every requirement, by id, ``length`` of them from ``start``."""
        start, length = _paging(start, length)
        with self.db.session() as session:
            condition = build_filter(session, self.catalog, list(requirements))
            total = session.scalar(select(func.count()).select_from(Profile).where(condition))
            rows = session.scalars(
                select(Profile).where(condition).order_by(Profile.id).offset(start).limit(length)
            )
            profiles = [p.as_dict() for p in rows]
        return Page(start=start, length=len(profiles), total=total or 0, profiles=profiles)

    def known_fields(self) -> list[tuple[str, str]]:
        """Every field a requirement may name: ``(name, kind)``, columns first."""
        with self.db.session() as session:
            custom = sorted(self.catalog.names(session) - COLUMNS.keys())
        return [(n, k.value) for n, k in COLUMNS.items()] + [(n, "custom") for n in custom]

    # -- writes ------------------------------------------------------------------------

    def create(
        self,
        email: str,
        fields: dict[str, Any] | None = None,
        tags: Sequence[str] = (),
        status: str | None = None,
        external_ids: dict[str, str] | None = None,
        consent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a profile (fact ``profile.created``); ConflictError if the email is taken.

        Without ``status`` or ``consent`` the profile is ``unconfirmed``: no consent is known.
        A ``status`` given here is the caller's statement (recorded in the consent ledger as
        explicit, with the API as its source); ``consent`` states it with proof.
        """
        fields = check_fields(fields or {})
        tags = check_tags(tags, "tags")
        email = check_email(email, "email")
        if status is not None and consent is not None:
            raise InputError("invalid_value", "consent", "give status or consent, not both")
        statement = self._statement(status, consent, "create")
        with self._writing() as (session, facts):
            if session.scalar(select(Profile.id).where(Profile.email == email)) is not None:
                raise ConflictError("email", f"a profile with email {email} exists already")
            for source, ext_id in _build_ref(email, external_ids).external_ids.items():
                owner = session.scalar(
                    select(ExternalId.profile_id).where(
                        ExternalId.source == source, ExternalId.external_id == ext_id
                    )
                )
                if owner is not None:  # it names that profile: creating would answer it
                    raise ConflictError(
                        f"external_ids.{source}",
                        f"the id {ext_id!r} of {source} belongs to profile {owner} already",
                    )
            profile = self._create(session, facts, email, fields, tags, statement, external_ids)
            return profile.as_dict()

    def update_profiles(
        self, requirements: Sequence[Requirement], fields: dict[str, Any], create: bool
    ) -> Upserted:
        """Copernica's ``Database_updateProfiles``: set ``fields`` on every matching profile.

        A profile matches if it meets every requirement. When none does and ``create`` is true,
        create one from the fields plus the requirements' ``=`` values (the key fields, such as
        ``email``).

        With ``create``, an ``=`` requirement may name a field no profile has yet: it is the key
        field the new profile will get (the first upsert by a new key must work). Without
        ``create`` such a name is an unknown field, as in a search.
        """
        fields = check_fields(fields)
        with self._writing() as (session, facts):
            condition = build_filter(
                session, self.catalog, list(requirements), new_keys_allowed=create
            )
            matches = list(
                session.scalars(
                    select(Profile).where(condition).order_by(Profile.id).with_for_update()
                )
            )
            if not matches and create:
                email, key_fields, where = _key_fields(requirements)
                taken = session.scalar(
                    select(Profile.id).where(Profile.email == email).with_for_update()
                )
                if taken is not None:  # creating it would only find it again: refuse, say why
                    raise ConflictError(
                        where,
                        f"the profile with email {email} (id {taken}) does not meet the other "
                        "requirements, and a second profile with that email cannot be created;"
                        " nothing was changed",
                    )
                profile = self._create(session, facts, email, key_fields | fields, (), None, None)
                return Upserted(True, [profile.as_dict()], [f.id for f in facts])
            for profile in matches:
                self._update(session, facts, profile, fields)
            return Upserted(False, [p.as_dict() for p in matches], [f.id for f in facts])

    def update_fields(self, profile_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Set custom fields on one profile (fact ``profile.updated``)."""
        fields = check_fields(fields)
        with self._writing() as (session, facts):
            profile = _load(session, profile_id, lock=True)
            self._update(session, facts, profile, fields)
            return profile.as_dict()

    def change_tags(
        self, profile_id: int, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Add and remove tags (fact ``profile.tagged`` with ``data.added``/``data.removed``)."""
        add, remove = check_tags(add, "add"), check_tags(remove, "remove")
        if not add and not remove:
            raise InputError("missing_value", "add", "give tags to add or to remove")
        for index, tag in enumerate(remove):
            if tag in add:
                raise InputError(
                    "invalid_value", f"remove[{index}]", f"tag {tag!r} is both added and removed"
                )
        with self._writing() as (session, facts):
            profile = _load(session, profile_id, lock=True)
            before = list(profile.tags or [])
            after = [t for t in before if t not in remove]
            after += [t for t in add if t not in after]
            profile.tags = after
            tagged = ProfileTagged(
                added=[t for t in after if t not in before],
                removed=[t for t in before if t not in after],
            )
            self._fact(session, facts, tagged, profile)
            return profile.as_dict()

    def unsubscribe(self, profile_id: int) -> dict[str, Any]:
        """Withdraw consent (fact ``profile.unsubscribed``); unsubscribing twice is harmless.

        Recorded in the consent ledger; a bounced address stays bounced.
        """
        statement = Statement(
            stated=ProfileStatus.UNSUBSCRIBED.value,
            source=self.source,
            proof=f"unsubscribe call to the {self.source} API",
            explicit=True,
        )
        with self._writing() as (session, facts):
            profile = _load(session, profile_id, lock=True)
            previous, decision = apply_statement(session, profile, statement)
            if decision.outcome is not ConsentOutcome.IGNORED:  # asked twice: told twice
                unsubscribed = ProfileUnsubscribed(previous_status=previous)
                self._fact(session, facts, unsubscribed, profile)
            return profile.as_dict()

    def set_consent(self, profile_id: int, consent: dict[str, Any]) -> dict[str, Any]:
        """State consent for one profile with its proof; the ledger keeps it, applied or not.

        ``consent`` is a :class:`~hub.facts.schema.ConsentIn` (``status``, ``proof``,
        ``explicit``, ``at``, ``ip``, ``user_agent``, ``evidence``). Answers the profile and the
        ledger entry the statement made.
        """
        statement = self._statement(None, consent, "consent")
        assert statement is not None
        with self._writing() as (session, facts):
            profile = _load(session, profile_id, lock=True)
            previous, decision = apply_statement(session, profile, statement)
            raised = raised_fact(previous, statement, decision)
            if raised is not None:
                self._fact(session, facts, raised, profile)
            return {
                "profile": profile.as_dict(),
                "consent": {
                    "outcome": decision.outcome.value,
                    "status_before": previous,
                    "status_after": decision.after,
                    "reason": decision.reason,
                },
            }

    def consent_ledger(self, profile_id: int) -> list[dict[str, Any]]:
        """The profile's consent ledger, newest first; NotFoundError for an unknown profile."""
        with self.db.session() as session:
            _load(session, profile_id)
            return ledger(session, profile_id)

    def delete(self, profile_id: int) -> int:
        """Delete a profile; the ``profile.deleted`` fact is kept as the record of it.

        Evaluating a fact resolves, and so would re-create, the contact it names. So the
        deletion fact is stored as already evaluated, and facts about this contact still
        waiting for a worker are settled as ``failed`` with the reason: no rule acts (or mails)
        on a contact that was deleted. A fact a worker is evaluating at that moment can still
        re-create the contact; ``docs/soap.md`` says so.
        """
        with self._writing() as (session, facts):
            profile = _load(session, profile_id, lock=True)
            fact = self._fact(session, facts, ProfileDeleted(id=profile.id), profile)
            session.execute(
                update(Fact)
                .where(Fact.id == fact.id)
                .values(status=FactStatus.EVALUATED.value, evaluated_at=utcnow())
            )
            about = [
                Fact.profile_ref[("external_ids", x.source)].as_string() == x.external_id
                for x in profile.external_ids
            ]
            if profile.email:
                about.append(Fact.profile_ref["email"].as_string() == profile.email)
            # facts a worker holds in its batch right now are skipped, not waited for: waiting
            # could deadlock with that batch, which locks this profile to store its firings
            waiting = (
                select(Fact.id)
                .where(Fact.status == FactStatus.PENDING.value, or_(*about))
                .with_for_update(skip_locked=True)
            )
            session.execute(
                update(Fact)
                .where(Fact.id.in_(waiting))
                .values(
                    status=FactStatus.FAILED.value,
                    error=f"profile {profile.id} was deleted before this fact was evaluated",
                )
            )
            session.execute(delete(Profile).where(Profile.id == profile.id))
            return fact.id

    def post_fact(
        self,
        profile_id: int,
        fact_type: str,
        data: dict[str, Any] | None = None,
        source_id: str | None = None,
    ) -> tuple[int, str]:
        """Store a fact about a profile for the rules; ``(fact id, accepted|duplicate)``."""
        if not isinstance(fact_type, str) or not FACT_TYPE.fullmatch(fact_type):
            raise InputError(
                "invalid_value", "type", "must be dotted lower-case words, such as order.placed"
            )
        if source_id is not None and (not isinstance(source_id, str) or not source_id):
            raise InputError("invalid_value", "source_id", "must be text of 1 to 255 characters")
        if source_id is not None and len(source_id) > 255:
            raise InputError("invalid_value", "source_id", "must be 1 to 255 characters")
        with self.db.session() as session:
            profile = _load(session, profile_id)
            ref = _ref(profile)
        try:
            fact = FactIn(
                type=fact_type,
                source=self.source,
                source_id=source_id,
                profile=ref,
                data=data or {},
            )
        except ValidationError as exc:
            raise _input_error(exc, "") from None
        (stored,) = store_facts(self.db, [fact])
        notify(self.settings, self.redis)
        return stored.id, stored.status

    # -- the write path ----------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[tuple[Session, list[_StoredFact]]]:
        """One transaction for the change and its facts; workers are woken after the commit."""
        facts: list[_StoredFact] = []
        with self.db.session() as session:
            yield session, facts
        if facts:
            notify(self.settings, self.redis)

    def _create(
        self,
        session: Session,
        facts: list[_StoredFact],
        email: str,
        fields: dict[str, Any],
        tags: Sequence[str],
        statement: Statement | None,
        external_ids: dict[str, str] | None,
    ) -> Profile:
        ref = _build_ref(email, external_ids)
        (profile,) = resolve_profiles(session, [ref.model_dump(exclude_none=True)])
        raised = None
        if statement is not None:
            previous, decision = apply_statement(session, profile, statement)
            raised = raised_fact(previous, statement, decision)
        merge_fields(profile, fields)
        if tags:
            profile.tags = list(dict.fromkeys([*(profile.tags or []), *tags]))
        session.flush()
        self.catalog.learn(list(fields))
        created = ProfileCreated(fields=fields, changed=sorted(fields), tags=list(tags))
        self._store(session, facts, created.TYPE, ref, created.data())
        if raised is not None:
            self._store(session, facts, raised.TYPE, ref, raised.data())
        return profile

    def _statement(
        self, status: str | None, consent: dict[str, Any] | None, where: str
    ) -> Statement | None:
        """A caller's consent as a ledger statement: a bare status, or a ConsentIn with proof."""
        if consent is not None:
            if not isinstance(consent, dict):
                raise InputError("invalid_value", where, "consent is an object")
            try:
                given = ConsentIn.model_validate(consent)
            except ValidationError as exc:
                raise _input_error(exc, where) from None
            return Statement(
                stated=given.status,
                source=self.source,
                proof=given.proof,
                explicit=given.explicit,
                stated_at=given.at,
                ip=given.ip,
                user_agent=given.user_agent,
                evidence=dict(given.evidence),
            )
        if status is None or status == ProfileStatus.UNCONFIRMED.value:
            return None
        status = check_status(status, "status")
        return Statement(
            stated=status,
            source=self.source,
            proof=f"status {status} given at creation through the {self.source} API",
            explicit=True,
        )

    def _update(
        self, session: Session, facts: list[_StoredFact], profile: Profile, fields: dict[str, Any]
    ) -> None:
        changed = merge_fields(profile, fields)
        self.catalog.learn(list(fields))
        self._fact(session, facts, ProfileUpdated(changed=changed, fields=fields), profile)

    def _fact(
        self, session: Session, facts: list[_StoredFact], fact: OwnFact, profile: Profile
    ) -> _StoredFact:
        ref = _ref(profile)
        return self._store(session, facts, fact.TYPE, ref, fact.data())

    def _store(
        self,
        session: Session,
        facts: list[_StoredFact],
        fact_type: str,
        ref: ProfileRef,
        data: dict[str, Any],
    ) -> _StoredFact:
        fact = FactIn(
            type=fact_type,
            source=self.source,
            source_id=f"{self.source}-{uuid.uuid4().hex}",
            profile=ref,
            data=data,
        )
        session.flush()  # the change first, so the fact's insert follows it in this transaction
        (stored,) = store_facts(self.db, [fact], session=session)
        result = _StoredFact(stored.id)
        facts.append(result)
        return result


@dataclass(frozen=True)
class _StoredFact:
    id: int


# -- checks shared by every entry point --------------------------------------------------

RESERVED = RESERVED_FIELDS  # the profile's columns (search.COLUMNS) and its external ids


def check_fields(fields: dict[str, Any], where: str = "fields") -> dict[str, Any]:
    """Custom field values: names like identifiers, not a column, values JSON scalars.

    The rule is :func:`hub.facts.schema.custom_field_error`, the one a fact's
    ``profile.fields`` is checked with, so every door accepts the same fields.
    """
    if not isinstance(fields, dict):
        raise InputError("invalid_value", where, "must be a map of field names to values")
    for name, value in fields.items():
        problem = custom_field_error(name, value)
        if problem is not None:
            raise InputError(problem[0], f"{where}.{name}", problem[1])
    return fields


def check_tags(tags: Sequence[str], where: str) -> list[str]:
    """The tags trimmed, each once; InputError naming ``where`` (or the tag) if one is wrong.

    A list holds at most :data:`MAX_TAGS` tags, each 1 to 100 characters.
    """
    tags = list(tags or [])
    if len(tags) > MAX_TAGS:
        raise InputError("invalid_value", where, f"at most {MAX_TAGS} tags")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag.strip() or len(tag) > 100:
            raise InputError("invalid_value", f"{where}[{index}]", "a tag is 1 to 100 characters")
    return list(dict.fromkeys(t.strip() for t in tags))


def check_email(email: str | None, where: str) -> str:
    """The address trimmed and lower-cased; InputError at ``where`` if it is empty or invalid."""
    if email is not None and not isinstance(email, str):
        raise InputError("invalid_value", where, "an email address is text")
    value = (email or "").strip().lower()
    if not value:
        raise InputError("missing_value", where, "an email address is required")
    if len(value) > 320 or not EMAIL.fullmatch(value):
        raise InputError("invalid_value", where, f"{email!r} is not a valid email address")
    return value


def check_status(status: str, where: str) -> str:
    """``status`` if it is a :class:`ProfileStatus` value; InputError at ``where`` otherwise."""
    allowed = [s.value for s in ProfileStatus]
    if status not in allowed:
        raise InputError("invalid_value", where, f"{status!r} is not one of {', '.join(allowed)}")
    return status


def _paging(start: int | None, length: int | None) -> tuple[int, int]:
    start = 0 if start is None else start
    length = DEFAULT_PAGE if length is None else length
    if not 0 <= start <= MAX_ID - MAX_PAGE:
        raise InputError("invalid_value", "start", f"must be 0 to {MAX_ID - MAX_PAGE}")
    if not 1 <= length <= MAX_PAGE:
        raise InputError("invalid_value", "length", f"must be 1 to {MAX_PAGE}")
    return start, length


def _load(session: Session, profile_id: int, lock: bool = False) -> Profile:
    if not 0 <= profile_id <= MAX_ID:  # no such row; the database would overflow, not say so
        raise NotFoundError("id", f"no profile with id {profile_id}")
    profile = session.get(Profile, profile_id, with_for_update=lock or None)
    if profile is None:
        raise NotFoundError("id", f"no profile with id {profile_id}")
    return profile


def _ref(profile: Profile) -> ProfileRef:
    """The reference of a fact about a change already applied: who, never what (no consent)."""
    return ProfileRef.model_validate(
        {
            "email": profile.email,
            "external_ids": {x.source: x.external_id for x in profile.external_ids},
        }
    )


def _build_ref(email: str, external_ids: dict[str, str] | None) -> ProfileRef:
    try:
        return ProfileRef.model_validate({"email": email, "external_ids": external_ids or {}})
    except ValidationError as exc:
        raise _input_error(exc, "profile") from None


def _input_error(exc: ValidationError, default: str) -> InputError:
    """The first problem pydantic found, as an InputError naming its field."""
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or default
    return InputError("invalid_value", where, err["msg"].removeprefix("Value error, "))


def _key_fields(requirements: Sequence[Requirement]) -> tuple[str, dict[str, Any], str]:
    """The email and custom field values a new profile takes from ``=`` requirements.

    Also where the email came from (``requirements[0].value``), for an error about it.
    """
    email: str | None = None
    where = "requirements"
    values: dict[str, Any] = {}
    for index, req in enumerate(requirements):
        if " ".join((req.operator or "=").split()) != "=":
            continue
        if req.fieldname == "email":
            where = f"requirements[{index}].value"
            email = check_email(req.value, where)
        elif req.fieldname not in RESERVED:
            values[req.fieldname] = req.value
    if email is None:
        raise InputError(
            "missing_value",
            "requirements",
            "no profile matched; creating one needs a requirement email = <address>",
        )
    return email, values, where
