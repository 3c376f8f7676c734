"""What a fault scenario posts and what it must find: facts in, mails, counters and fields out.

:class:`FactClient` posts facts over HTTP and records every 202; :class:`Expected` is what
those facts must cause, exactly; :func:`observe` compares it with the database (read through
:class:`Probe`) and the SMTP sink.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from tests.faults.services import MailSink

DOMAIN = "faults.test"


# --- the client that posts facts ---------------------------------------------------------


class FactClient:
    """Posts facts over HTTP and records every acknowledgement (202) it gets.

    A request that fails (a 5xx, a refused connection) is sent again until it is
    acknowledged; facts carry a ``source_id``, so a repeat is a duplicate of the same fact.
    """

    def __init__(self, base_url: str, api_key: str) -> None:
        self.url = f"{base_url}/api/v1/facts"
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.acked: dict[str, int] = {}  # source_id -> fact id
        self.failures: Counter[str] = Counter()
        self.last_ack = 0.0
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []

    def post(self, facts: list[dict[str, Any]], http: requests.Session, patience: float) -> None:
        give_up = time.monotonic() + patience
        while True:
            try:
                response = http.post(self.url, json=facts, headers=self.headers, timeout=30)
                if response.status_code == 202:
                    ids = [f["id"] for f in response.json()["facts"]]
                    with self._lock:
                        for fact, fact_id in zip(facts, ids, strict=True):
                            self.acked[fact["source_id"]] = fact_id
                        self.last_ack = time.monotonic()
                    return
                failure = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                failure = type(exc).__name__
            with self._lock:
                self.failures[failure] += 1
            if time.monotonic() > give_up:
                raise AssertionError(
                    f"facts not acknowledged within {patience:.0f} s: {dict(self.failures)}"
                )
            time.sleep(0.2)

    def post_all(
        self,
        facts: Sequence[dict[str, Any]],
        *,
        per_request: int = 10,
        threads: int = 2,
        pause: float = 0.0,
        patience: float = 60.0,
    ) -> None:
        """Post ``facts`` in requests of ``per_request``; with one thread, in order."""
        chunks = [list(facts[i : i + per_request]) for i in range(0, len(facts), per_request)]
        local = threading.local()
        sessions: list[requests.Session] = []

        def send(chunk: list[dict[str, Any]]) -> None:
            if not hasattr(local, "http"):
                local.http = requests.Session()
                sessions.append(local.http)
            self.post(chunk, local.http, patience)
            if pause:
                time.sleep(pause)

        try:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(send, chunks))
        finally:
            for http in sessions:
                http.close()

    def in_background(self, facts: Sequence[dict[str, Any]], **kwargs: Any) -> threading.Thread:
        """Post while the test injects a fault; :meth:`join` raises what the thread raised."""

        def run() -> None:
            try:
                self.post_all(facts, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised by join()
                self._errors.append(exc)

        thread = threading.Thread(target=run, name="fact-client", daemon=True)
        thread.start()
        return thread

    def join(self, thread: threading.Thread, timeout: float = 120) -> None:
        thread.join(timeout)
        assert not thread.is_alive(), "the client was still posting"
        if self._errors:
            raise self._errors[0]


# --- what the database says ---------------------------------------------------------------

SLOW_COMMIT = """
CREATE TABLE faults_slow_commits (at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION faults_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('faults.slept', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('faults.slept', 'yes', true);
        INSERT INTO faults_slow_commits DEFAULT VALUES;
        PERFORM pg_sleep(SECONDS);
    END IF;
    RETURN NULL;
END $$;
"""
# Which writes make a transaction slow: an evaluation inserts rule firings; an action job
# writes its row of the outbox and ledger, ``action_runs`` (inserted by the evaluation too).
SLOW_TRIGGERS = {
    "rule_firings": "INSERT",
    "action_runs": "INSERT OR UPDATE",
}


class Probe:
    """Reads the hub's database on fresh connections (a terminated one does not stick)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, poolclass=NullPool)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        for attempt in range(20):
            try:
                with self.engine.connect() as conn:
                    return list(conn.execute(text(sql), params))
            except SQLAlchemyError:
                if attempt == 19:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def execute(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql))

    def make_commits_slow(self, seconds: float, tables: Sequence[str] = ("rule_firings",)) -> None:
        """A deferred trigger: a transaction that wrote to ``tables`` sleeps, at commit.

        ``rule_firings`` slows the evaluations' commits, ``action_runs`` the action jobs'
        too (each holds its profile row locked meanwhile). Once per transaction, counted in
        ``faults_slow_commits`` in that same transaction, so that only commits that
        happened count: a scenario checks with :meth:`slow_commits` that they were slow.
        """
        sql = SLOW_COMMIT.replace("SECONDS", repr(float(seconds)))
        for table in tables:
            sql += (
                f"CREATE CONSTRAINT TRIGGER faults_slow_commit AFTER {SLOW_TRIGGERS[table]} "
                f"ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "EXECUTE FUNCTION faults_slow_commit();\n"
            )
        self.execute(sql)

    def slow_commits(self) -> int:
        """How many commits :meth:`make_commits_slow`'s trigger slowed down."""
        return int(self.rows("SELECT count(*) FROM faults_slow_commits")[0][0])

    def fact_statuses(self, ids: Sequence[int]) -> Counter[str]:
        rows = self.rows(
            "SELECT status, count(*) FROM facts WHERE id = ANY(:ids) GROUP BY status",
            ids=list(ids),
        )
        return Counter({status: n for status, n in rows})

    def fields(self, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self.rows(
            "SELECT email, fields FROM profiles WHERE email = ANY(:emails)", emails=list(emails)
        )
        return {email: fields or {} for email, fields in rows}

    def messages(self) -> list[Any]:
        return self.rows("SELECT to_address, subject, message_id, status, error FROM messages")

    def actions(self) -> list[Any]:
        """Every action's row of the outbox: its status and, once settled, its outcome."""
        return self.rows("SELECT job_id, action, status, outcome FROM action_runs")


# --- expectations and what was observed ---------------------------------------------------


@dataclass
class Expected:
    """What the acknowledged facts must have caused, exactly."""

    mails: set[tuple[str, str]] = field(default_factory=set)  # (recipient, subject), once each
    counters: dict[str, dict[str, int]] = field(default_factory=dict)  # 0: absent or 0
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def count(self, email: str, name: str, by: int = 1) -> None:
        mine = self.counters.setdefault(email, {})
        mine[name] = mine.get(name, 0) + by


def order_facts(tag: str, contacts: int, per_contact: int) -> tuple[list[dict[str, Any]], Expected]:
    """``order.placed`` facts, contacts interleaved: each a mail and an ``orders`` increment."""
    facts, expected = [], Expected()
    for n in range(per_contact):
        for c in range(contacts):
            email = f"{tag}-{c}@{DOMAIN}"
            order_id = f"{tag}-{c}-{n}"
            facts.append(
                {
                    "type": "order.placed",
                    "source": "shop",
                    "source_id": order_id,
                    "profile": {
                        "email": email,
                        "consent": {"status": "subscribed", "proof": "opted in at checkout"},
                    },
                    "data": {"order_id": order_id, "total": 10 + n},
                }
            )
            expected.mails.add((email, f"Order {order_id}"))
            expected.count(email, "orders")
    return facts, expected


def visit_facts(
    tag: str, visits: Sequence[int], fields: Sequence[bool]
) -> tuple[list[dict[str, Any]], Expected]:
    """``page.visited`` facts, contact ``c`` visiting ``visits[c]`` times, one after another.

    A contact's visits are posted one after the other (and occur in that order), so that
    they span consecutive batches, which two workers take at once. Every visit fires a
    ``visits`` increment (an action job); the first visit fires ``first-visit``, the
    twentieth ``twentieth-visit``, each once per contact, whatever the batches.

    With ``fields[c]`` the visits of contact ``c`` carry ``profile.fields`` (last_visit,
    page), merged by the evaluation: the merge must not overwrite the increments that
    action jobs committed meanwhile. Without, the evaluation leaves the profile row alone,
    so nothing but the hub's own ordering keeps a worker from reading a contact's history
    while the other still holds its earlier visits.
    """
    start = datetime.now(UTC) - timedelta(days=1)
    facts, expected = [], Expected()
    for c, (total, with_fields) in enumerate(zip(visits, fields, strict=True)):
        email = f"{tag}-{c}@{DOMAIN}"
        for n in range(total):
            profile: dict[str, Any] = {"email": email}
            if with_fields:
                profile["fields"] = {"last_visit": n + 1, "page": f"p{n}"}
            facts.append(
                {
                    "type": "page.visited",
                    "source": "web",
                    "source_id": f"{tag}-{c}-visit-{n}",
                    "occurred_at": (start + timedelta(minutes=c, seconds=n)).isoformat(),
                    "profile": profile,
                    "data": {"page": f"p{n}"},
                }
            )
        expected.count(email, "visits", total)
        expected.count(email, "first_visits", 1)
        expected.count(email, "twentieth_visits", 1 if total >= 20 else 0)
        if with_fields:
            expected.fields[email] = {"last_visit": total, "page": f"p{total - 1}"}
        expected.mails.add((email, "Welcome"))
        if total >= 20:
            expected.mails.add((email, "Twenty visits"))
    return facts, expected


@dataclass
class Observation:
    """One look at the database and the sink, compared with what was expected."""

    acked: int
    statuses: Counter[str]
    sink_ids: Counter[str]
    sink_mails: Counter[tuple[str, str]]
    row_status: dict[tuple[str, str], str]
    row_error: dict[tuple[str, str], str]
    counters_short: list[str]
    counters_over: list[str]
    lost_increments: int
    extra_increments: int
    fields_wrong: list[str]
    missing: list[tuple[str, str]]
    unexpected: list[tuple[str, str]]
    expected_mails: int
    actions: Counter[str]  # action_runs rows by status
    gave_up: list[str]  # actions settled failed, skipped or cancelled: job id, outcome

    @property
    def evaluated(self) -> int:
        return self.statuses.get("evaluated", 0)

    @property
    def unknown(self) -> int:
        return sum(1 for s in self.row_status.values() if s == "unknown")

    @property
    def sending(self) -> int:
        return sum(1 for s in self.row_status.values() if s == "sending")

    @property
    def duplicate_ids(self) -> dict[str, int]:
        return {m: n for m, n in self.sink_ids.items() if n > 1}

    @property
    def duplicate_mails(self) -> dict[tuple[str, str], int]:
        return {m: n for m, n in self.sink_mails.items() if n > 1}

    def key(self) -> tuple[Any, ...]:
        """Changes whenever the hub made progress (for noticing that it stopped)."""
        return (
            self.evaluated,
            sum(self.sink_ids.values()),
            self.lost_increments,
            self.extra_increments,
            len(self.fields_wrong),
            tuple(sorted(Counter(self.row_status.values()).items())),
            tuple(sorted(self.actions.items())),
        )

    def incomplete(self) -> list[str]:
        """What may still come: facts to evaluate, mails to send, increments to apply."""
        problems = []
        if self.evaluated < self.acked:
            others = {s: n for s, n in self.statuses.items() if s != "evaluated"}
            problems.append(
                f"{self.acked - self.evaluated} of {self.acked} acknowledged facts not "
                f"evaluated ({others or 'no row'})"
            )
        if self.missing:
            rows = Counter(self.row_status.get(m, "no row") for m in self.missing)
            problems.append(
                f"{len(self.missing)} of {self.expected_mails} mails never reached the sink "
                f"(their message rows: {dict(rows)}; e.g. {self.missing[0]})"
            )
        if self.sending:
            problems.append(f"{self.sending} message rows still 'sending'")
        if self.actions.get("planned"):
            problems.append(f"{self.actions['planned']} actions still 'planned' (not settled)")
        if self.counters_short:
            problems.append(
                f"{len(self.counters_short)} counters short, {self.lost_increments} increments "
                f"missing (e.g. {self.counters_short[0]})"
            )
        if self.fields_wrong:
            problems.append(
                f"{len(self.fields_wrong)} profile fields wrong (e.g. {self.fields_wrong[0]})"
            )
        return problems

    def wrong(self, max_unknown: int) -> list[str]:
        """What no waiting mends: duplicates, mails nobody asked for, too many increments."""
        problems = []
        if self.duplicate_ids:
            extra = sum(n - 1 for n in self.duplicate_ids.values())
            problems.append(
                f"{len(self.duplicate_ids)} Message-IDs received more than once "
                f"({extra} extra copies)"
            )
        if self.duplicate_mails:
            extra = sum(n - 1 for n in self.duplicate_mails.values())
            example = next(iter(self.duplicate_mails))
            problems.append(
                f"{len(self.duplicate_mails)} mails received more than once by their "
                f"recipient ({extra} extra; e.g. {example})"
            )
        if self.unexpected:
            problems.append(f"{len(self.unexpected)} unexpected mails (e.g. {self.unexpected[0]})")
        misrecorded = sorted(
            (m, s)
            for m, s in self.row_status.items()
            if self.sink_mails.get(m, 0) and s not in ("sent", "unknown", "sending")
        )
        if misrecorded:
            problems.append(
                f"{len(misrecorded)} mails at the sink whose row is not 'sent' "
                f"(e.g. {misrecorded[0]})"
            )
        if self.gave_up:
            problems.append(
                f"{len(self.gave_up)} actions settled failed, skipped or cancelled "
                f"(e.g. {self.gave_up[0]})"
            )
        if self.unknown > max_unknown:
            unknown = [m for m, s in self.row_status.items() if s == "unknown"]
            delivered = sum(1 for m in unknown if self.sink_mails.get(m, 0))
            first = f"{unknown[0]}: {self.row_error.get(unknown[0])}"
            problems.append(
                f"{self.unknown} mails 'unknown' (at most {max_unknown} allowed), {delivered} "
                f"of them accepted by the sink (e.g. {first})"
            )
        if self.counters_over:
            problems.append(
                f"{len(self.counters_over)} counters too high, {self.extra_increments} "
                f"increments applied twice (e.g. {self.counters_over[0]})"
            )
        return problems


def observe(probe: Probe, sink: MailSink, client: FactClient, expected: Expected) -> Observation:
    acked = dict(client.acked)
    statuses = probe.fact_statuses(list(acked.values()))
    sink_mails = sink.by_mail()
    rows = probe.messages()
    actions = probe.actions()
    row_status = {(str(to).lower(), subj): status for to, subj, _id, status, _e in rows}
    row_error = {(str(to).lower(), subj): error for to, subj, _id, _s, error in rows}
    missing = sorted(
        m for m in expected.mails if sink_mails.get(m, 0) == 0 and row_status.get(m) != "unknown"
    )
    unexpected = sorted(m for m in sink_mails if m not in expected.mails)
    emails = sorted(set(expected.counters) | set(expected.fields))
    stored = probe.fields(emails)
    short, over, fields_wrong = [], [], []
    lost = extra = 0
    for email in emails:
        got = stored.get(email, {})
        for name, want in expected.counters.get(email, {}).items():
            value = got.get(name, 0) or 0
            if value < want:
                short.append(f"{email} {name} = {value}, not {want}")
                lost += want - value
            elif value > want:
                over.append(f"{email} {name} = {value}, not {want}")
                extra += value - want
        for name, want in expected.fields.get(email, {}).items():
            if got.get(name) != want:
                fields_wrong.append(f"{email} {name} = {got.get(name)!r}, not {want!r}")
    return Observation(
        acked=len(acked),
        statuses=statuses,
        sink_ids=sink.by_message_id(),
        sink_mails=sink_mails,
        row_status=row_status,
        row_error=row_error,
        counters_short=short,
        counters_over=over,
        lost_increments=lost,
        extra_increments=extra,
        fields_wrong=fields_wrong,
        missing=missing,
        unexpected=unexpected,
        expected_mails=len(expected.mails),
        actions=Counter(status for _job, _action, status, _outcome in actions),
        gave_up=[
            f"{job} {action} {status}: {outcome}"
            for job, action, status, outcome in actions
            if status in ("failed", "skipped", "cancelled")
        ],
    )
