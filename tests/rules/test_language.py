"""The rule language end to end: real engine, real database, real Redis, real HTTP."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select

from hub.actions.hub_facts import MAX_CHAIN_DEPTH
from hub.facts.ingest import store_facts
from hub.facts.schema import FactIn
from hub.models import ActionRun, Fact, Message, Profile, RuleFiring
from hub.runtime import Runtime
from hub.worker.dispatch import job_key
from hub.worker.drain import drain_pending
from tests.conftest import run_jobs


def use_rules(rt: Runtime, rules_dir: Path, text: str) -> None:
    """Replace the shipped rules of this test's rule directory by ``text``."""
    for old in rules_dir.glob("*.yaml"):
        old.unlink()
    (rules_dir / "test.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    rt.set_engine(None)


def post(rt: Runtime, *facts: dict[str, Any]) -> list[int]:
    return [s.id for s in store_facts(rt.db, [FactIn.model_validate(f) for f in facts])]


def fact(type_: str, email: str = "ann@example.com", **data: Any) -> dict[str, Any]:
    return {"type": type_, "profile": {"email": email}, "data": data}


def settle(rt: Runtime, rounds: int = 20) -> None:
    """Evaluate and run jobs until nothing is pending (chains of hub facts included)."""
    for _ in range(rounds):
        drain_pending()
        run_jobs(rt)
        with rt.db.session() as s:
            if not s.scalar(select(func.count()).select_from(Fact).where(Fact.status == "pending")):
                return


def fired(rt: Runtime, fact_id: int | None = None) -> list[str]:
    with rt.db.session() as s:
        q = select(RuleFiring.rule_name).order_by(RuleFiring.id)
        if fact_id is not None:
            q = q.where(RuleFiring.fact_id == fact_id)
        return list(s.scalars(q))


def profile(rt: Runtime, email: str = "ann@example.com") -> Profile:
    with rt.db.session() as s:
        p = s.scalar(select(Profile).where(Profile.email == email))
        s.expunge(p)
        return p


OPERATORS = """
rules:
  - name: big
    when: {fact: order.placed, all: [data.total: {gt: 100}]}
    then: [{update_profile: {add_tags: [big]}}]
  - name: not-nl
    when: {fact: order.placed, all: [data.country: {not_in: [NL, BE]}]}
    then: [{update_profile: {add_tags: [abroad]}}]
  - name: has-coupon
    when: {fact: order.placed, all: [data.coupon: {exists: true}]}
    then: [{update_profile: {add_tags: [coupon]}}]
  - name: no-coupon
    when: {fact: order.placed, all: [data.coupon: {missing: true}]}
    then: [{update_profile: {add_tags: [nocoupon]}}]
  - name: vip-tag
    when: {fact: order.placed, all: [profile.tags: {contains: vip}]}
    then: [{update_profile: {add_tags: [seen-vip]}}]
  - name: sku-pattern
    when: {fact: order.placed, all: [data.sku: {matches: "AB-[0-9]+"}]}
    then: [{update_profile: {add_tags: [ab]}}]
  - name: either-or-none
    when:
      fact: order.*
      any: [data.total: {lt: 5}, data.rush: true]
      none: [profile.status: bounced]
    then: [{update_profile: {add_tags: [either]}}]
  - name: fresh-profile
    when: {fact: order.placed, all: [profile.created_at: {within: 1h}]}
    then: [{update_profile: {add_tags: [fresh]}}]
  - name: text-total-never-compares-with-a-number
    when: {fact: order.placed, all: [data.total: {gte: 0}]}
    then: [{update_profile: {add_tags: [numeric]}}]
"""


CASES = [
    (
        {"total": 150, "country": "DE", "sku": "AB-12"},
        {
            "big",
            "not-nl",
            "no-coupon",
            "sku-pattern",
            "fresh-profile",
            "text-total-never-compares-with-a-number",
        },
    ),
    (
        {"total": 3, "country": "NL", "coupon": "X", "sku": "AB-"},
        {
            "has-coupon",
            "either-or-none",
            "fresh-profile",
            "text-total-never-compares-with-a-number",
        },
    ),
    ({"total": "lots", "rush": True}, {"no-coupon", "either-or-none", "fresh-profile"}),
]


def test_operators_fire_what_they_say(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(hub_runtime, rules_dir, OPERATORS)
    facts = [fact("order.placed", f"p{i}@example.com", **data) for i, (data, _) in enumerate(CASES)]
    ids = post(hub_runtime, *facts)
    drain_pending()
    assert [set(fired(hub_runtime, fid)) for fid in ids] == [expected for _, expected in CASES]


def test_tags_and_limits_and_priority(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: first-order
            once_per_profile: true
            when: {fact: order.placed}
            then: [{update_profile: {add_tags: [vip]}}]
          - name: seen-vip
            when: {fact: order.placed, all: [profile.tags: {contains: vip}]}
            then: [{update_profile: {increment: {vip_orders: 1}}}]
          - name: fraud-stop
            priority: 100
            stop: true
            when: {fact: order.placed, all: [data.fraud: true]}
            then: [{update_profile: {add_tags: [fraud]}}]
        """,
    )
    first, second = post(hub_runtime, fact("order.placed"), fact("order.placed"))
    settle(hub_runtime)
    assert fired(hub_runtime, first) == ["first-order"]
    assert fired(hub_runtime, second) == []  # vip is set by a job after the first evaluation
    (third,) = post(hub_runtime, fact("order.placed"))
    (fraud,) = post(hub_runtime, fact("order.placed", fraud=True))
    settle(hub_runtime)
    assert fired(hub_runtime, third) == ["seen-vip"]  # once_per_profile held first-order back
    assert fired(hub_runtime, fraud) == ["fraud-stop"]  # priority first, stop ends the list
    p = profile(hub_runtime)
    assert p.fields == {"vip_orders": 1} and sorted(p.tags) == ["fraud", "vip"]


def test_update_profile_set_unset_increment_with_typed_templates_and_profile_updated(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: count
            when: {fact: order.placed}
            then:
              - update_profile:
                  set: {last_total: "{{ fact.data.total }}", label: "order {{ fact.data.total }}"}
                  unset: [prospect]
                  increment: {revenue: "{{ fact.data.total }}", orders: 1}
          - name: big-spender
            when:
              fact: profile.updated
              all: [data.changed: {contains: revenue}, profile.fields.revenue: {gte: 100}]
            then: [{update_profile: {add_tags: [big-spender]}}]
        """,
    )
    post(
        hub_runtime,
        {
            **fact("order.placed", total=60),
            "profile": {"email": "ann@example.com", "fields": {"prospect": True}},
        },
    )
    settle(hub_runtime)
    p = profile(hub_runtime)
    assert p.fields == {"last_total": 60, "label": "order 60", "revenue": 60, "orders": 1}
    assert p.tags == []
    post(hub_runtime, fact("order.placed", total=45.5))
    settle(hub_runtime)
    p = profile(hub_runtime)
    assert p.fields["revenue"] == 105.5 and p.fields["orders"] == 2
    assert p.tags == ["big-spender"]
    with hub_runtime.db.session() as s:
        updated = s.scalars(select(Fact).where(Fact.type == "profile.updated")).all()
        # only the profile.updated a rule fires on is stored (revenue 60 < 100: not wanted)
        assert [f.data["changed"] for f in updated] == [
            ["label", "last_total", "orders", "revenue"]
        ]
        assert {f.source for f in updated} == {"hub"}


def test_hub_facts_nobody_listens_to_are_not_stored(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: tag
            when: {fact: order.placed}
            then: [{update_profile: {add_tags: [x]}}]
        """,
    )
    post(hub_runtime, fact("order.placed"))
    settle(hub_runtime)
    with hub_runtime.db.session() as s:
        assert list(s.scalars(select(Fact.type))) == ["order.placed"]


def test_transactional_mail_reaches_unsubscribed_but_never_bounced(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        fact_types: [order.paid]
        rules:
          - name: confirm
            when: {fact: order.paid}
            then: [{send_mail: {template: thank-you, subject: Paid, kind: transactional}}]
          - name: promo
            when: {fact: order.paid}
            then: [{send_mail: {template: thank-you, subject: Promo}}]
        """,
    )
    post(
        hub_runtime,
        {
            "type": "order.paid",
            "profile": {"email": "u@example.com", "status": "unsubscribed"},
            "data": {"total": 5},
        },
        {
            "type": "order.paid",
            "profile": {"email": "b@example.com", "status": "bounced"},
            "data": {"total": 5},
        },
    )
    settle(hub_runtime)
    with hub_runtime.db.session() as s:
        rows = {
            (m.to_address, m.subject or m.template, m.status, m.error)
            for m in s.scalars(select(Message))
        }
    assert rows == {
        ("u@example.com", "Paid", "sent", None),
        ("u@example.com", "thank-you", "skipped", "profile is unsubscribed"),
        ("b@example.com", "thank-you", "skipped", "profile is bounced"),
        ("b@example.com", "thank-you", "skipped", "profile is bounced"),
    }
    assert len(list(hub_runtime.settings.outbox_dir.glob("*.eml"))) == 1


def test_unsubscribe_resubscribe_and_the_hub_fact_that_follows(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: stop
            when: {fact: form.submitted, all: [data.form: unsubscribe]}
            then: [{unsubscribe: {}}]
          - name: again
            when: {fact: form.submitted, all: [data.form: subscribe]}
            then: [{resubscribe: {}}]
          - name: bye
            when: {fact: profile.unsubscribed, all: [data.previous_status: subscribed]}
            then: [{send_mail: {template: thank-you, subject: Bye, kind: transactional}}]
        """,
    )
    post(hub_runtime, fact("form.submitted", form="unsubscribe"))
    settle(hub_runtime)
    assert profile(hub_runtime).status == "unsubscribed"
    assert fired(hub_runtime)[-1] == "bye"
    post(hub_runtime, fact("form.submitted", form="subscribe"))
    settle(hub_runtime)
    assert profile(hub_runtime).status == "subscribed"
    post(
        hub_runtime,
        {
            **fact("form.submitted", email="x@example.com", form="subscribe"),
            "profile": {"email": "x@example.com", "status": "bounced"},
        },
    )
    settle(hub_runtime)
    assert profile(hub_runtime, "x@example.com").status == "bounced"  # never resubscribed


def test_create_profile_upserts_by_email(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: refer
            when: {fact: form.submitted}
            then:
              - create_profile:
                  email: "{{ fact.data.friend }}"
                  fields: {referred_by: "{{ profile.email }}"}
          - name: welcome-friend
            when: {fact: profile.created, all: [profile.fields.referred_by: {exists: true}]}
            then: [{update_profile: {add_tags: [referred]}}]
        """,
    )
    post(hub_runtime, fact("form.submitted", friend="Bo@Example.com"))
    settle(hub_runtime)
    friend = profile(hub_runtime, "bo@example.com")
    assert friend.fields == {"referred_by": "ann@example.com"} and friend.tags == ["referred"]
    post(hub_runtime, fact("form.submitted", email="cy@example.com", friend="bo@example.com"))
    settle(hub_runtime)
    friend = profile(hub_runtime, "bo@example.com")
    assert friend.fields == {"referred_by": "cy@example.com"}  # upsert: found, fields updated
    with hub_runtime.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Profile)) == 3


def test_history_condition_counts_past_facts(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: third-big-order
            when:
              fact: order.placed
              all:
                - history:
                    fact: order.placed
                    within: 30d
                    where: [data.total: {gte: 100}]
                    count: {gte: 2}
            then: [{update_profile: {add_tags: [loyal]}}]
          - name: first-ever
            when:
              fact: order.placed
              all: [history: {fact: order.*, count: 0}]
            then: [{update_profile: {add_tags: [first]}}]
        """,
    )
    ids = [post(hub_runtime, fact("order.placed", total=t))[0] for t in (150, 50, 120, 10)]
    settle(hub_runtime)
    assert [fired(hub_runtime, i) for i in ids] == [["first-ever"], [], [], ["third-big-order"]]


@pytest.fixture
def http_sink() -> Iterator[dict[str, Any]]:
    """A real HTTP server on loopback that records requests and answers ``status``."""
    state: dict[str, Any] = {"requests": []}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state["requests"].append((self.command, self.path, dict(self.headers), body))
            time.sleep(state.get("delay_by_path", {}).get(self.path, 0.0))
            self.send_response(state.get("status_by_path", {}).get(self.path, 200))
            self.end_headers()

        do_POST = do_PUT = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


WEBHOOK = """
rules:
  - name: crm
    when: {fact: order.placed}
    then:
      - webhook:
          method: PUT
          url: "URL/contacts/{{ profile.email }}"
          headers: {X-Total: "{{ fact.data.total }}"}
          body: {email: "{{ profile.email }}", total: "{{ fact.data.total }}", tags: [a]}
          timeout: 0.5
"""


def test_webhook_sends_the_rendered_request_once(
    hub_runtime: Runtime, rules_dir: Path, http_sink: dict[str, Any]
) -> None:
    use_rules(hub_runtime, rules_dir, WEBHOOK.replace("URL", http_sink["url"]))
    (fid,) = post(hub_runtime, fact("order.placed", total=80))
    settle(hub_runtime)
    ((method, path, headers, body),) = http_sink["requests"]
    assert (method, path) == ("PUT", "/contacts/ann@example.com")
    assert headers["X-Total"] == "80" and headers["Idempotency-Key"] == job_key(fid, "crm", 0)
    assert json.loads(body) == {"email": "ann@example.com", "total": 80, "tags": ["a"]}
    from hub.actions.webhook import webhook

    with hub_runtime.db.session() as s:
        pid = s.scalar(select(Profile.id))
    assert (
        webhook(job_key(fid, "crm", 0), fid, pid, {"url": http_sink["url"] + "/x"})
        == "already sent"
    )
    assert len(http_sink["requests"]) == 1


def test_webhook_retries_5xx_and_timeouts_never_4xx(
    hub_runtime: Runtime, rules_dir: Path, http_sink: dict[str, Any]
) -> None:
    http_sink["status_by_path"] = {"/down": 503, "/refuses": 400, "/slow": 200}
    http_sink["delay_by_path"] = {"/slow": 1.0}
    names = ("down", "refuses", "slow")
    rules = "".join(
        f"  - name: {name}\n"
        f"    when: {{fact: order.placed}}\n"
        f"    then: [{{webhook: {{url: '{http_sink['url']}/{name}', timeout: 0.5}}}}]\n"
        for name in names
    )
    use_rules(hub_runtime, rules_dir, "rules:\n" + rules)
    (fid,) = post(hub_runtime, fact("order.placed", total=80))
    settle(hub_runtime)
    # 5xx and timeout: the action left its batch for a job of its own, with RQ's backoff
    for name in ("down", "slow"):
        job = Job.fetch(job_key(fid, name, 0), connection=hub_runtime.redis)
        assert job.get_status() == "scheduled" and job.retries_left == 4
        with hub_runtime.db.session() as s:
            assert s.get(ActionRun, job.id) is None
    # 4xx: never retried; the ledger holds it as done
    with pytest.raises(NoSuchJobError):
        Job.fetch(job_key(fid, "refuses", 0), connection=hub_runtime.redis)
    with hub_runtime.db.session() as s:
        assert s.get(ActionRun, job_key(fid, "refuses", 0)).action == "webhook"
    assert sorted(r[1] for r in http_sink["requests"]) == ["/down", "/refuses", "/slow"]


def test_emit_chains_and_a_cycle_stops_at_the_bound(hub_runtime: Runtime, rules_dir: Path) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: start
            when: {fact: order.placed}
            then: [{emit: {type: order.counted, data: {total: "{{ fact.data.total }}"}}}]
          - name: counted
            when: {fact: order.counted, all: [data.total: {gte: 10}]}
            then: [{update_profile: {increment: {n: 1}}}]
          - name: runaway
            when: {fact: profile.updated}
            then: [{update_profile: {increment: {n: 1}}}]
        """,
    )
    post(hub_runtime, fact("order.placed", total=12))
    settle(hub_runtime, rounds=40)
    with hub_runtime.db.session() as s:
        counted = s.scalar(select(Fact).where(Fact.type == "order.counted"))
        assert counted.data == {"total": 12, "caused_by": {"fact": 1, "rule": "start", "depth": 1}}
        stops = s.scalars(select(ActionRun).where(ActionRun.action == "chain-stopped")).all()
        depths = [
            f.data["caused_by"]["depth"]
            for f in s.scalars(select(Fact).where(Fact.type == "profile.updated"))
        ]
    assert len(stops) == 1
    assert max(depths) == MAX_CHAIN_DEPTH
    # one increment on order.counted (depth 1), one per profile.updated of depth 2..8
    assert profile(hub_runtime).fields["n"] == MAX_CHAIN_DEPTH


def test_every_matching_rule_fires_once_and_never_twice(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: a
            when: {fact: order.*}
            then: [{update_profile: {increment: {a: 1}}}]
          - name: b
            when: {fact: order.placed, all: [history: {fact: order.placed, count: 0}]}
            then: [{update_profile: {increment: {b: 1}}}]
          - name: c
            when: {fact: order.placed, all: [fact.occurred_at: {within: 1d}]}
            then: [{update_profile: {increment: {c: 1}}}]
        """,
    )
    (fid,) = post(hub_runtime, fact("order.placed"))
    settle(hub_runtime)
    with hub_runtime.db.session() as s:
        s.execute(Fact.__table__.update().values(status="pending"))
    settle(hub_runtime)
    assert sorted(fired(hub_runtime, fid)) == ["a", "b", "c"]
    assert profile(hub_runtime).fields == {"a": 1, "b": 1, "c": 1}


def test_a_new_contact_and_fields_a_source_changes_are_facts_too(
    hub_runtime: Runtime, rules_dir: Path
) -> None:
    use_rules(
        hub_runtime,
        rules_dir,
        """
        rules:
          - name: welcome-new
            when: {fact: profile.created}
            then: [{update_profile: {add_tags: [new]}}]
          - name: moved
            when: {fact: profile.updated, all: [data.changed: {contains: city}]}
            then: [{update_profile: {add_tags: [moved]}}]
        """,
    )
    with_city = {
        **fact("order.placed"),
        "profile": {"email": "ann@example.com", "fields": {"city": "Delft"}},
    }
    post(hub_runtime, with_city)
    settle(hub_runtime)
    post(hub_runtime, with_city)  # same city: nothing changed
    settle(hub_runtime)
    assert fired(hub_runtime) == ["welcome-new"]
    post(
        hub_runtime,
        {**with_city, "profile": {"email": "ann@example.com", "fields": {"city": "Oslo"}}},
    )
    settle(hub_runtime)
    assert fired(hub_runtime) == ["welcome-new", "moved"]
    assert sorted(profile(hub_runtime).tags) == ["moved", "new"]
    with hub_runtime.db.session() as s:
        created = s.scalar(select(Fact).where(Fact.type == "profile.created"))
        assert (created.source, created.data["caused_by"]["depth"]) == ("hub", 1)
