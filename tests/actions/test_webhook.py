"""``webhook``: the rendered request sent once; 5xx and timeouts retried, 4xx never.

The sink is on loopback, which webhooks may not reach by default (server-side request
forgery): these tests allow 127.0.0.0/8 as ``HUB_WEBHOOK_ALLOW`` would. What is refused without
that is in tests/test_outbound.py.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from hub.config import Settings
from hub.models import ActionRun, Profile
from hub.runtime import Runtime
from hub.worker.dispatch import job_key
from tests.rules.test_language import fact, post, settle, use_rules


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with loopback allowed (``HUB_WEBHOOK_ALLOW=127.0.0.0/8``)."""
    return dataclasses.replace(settings, webhook_allow=("127.0.0.0/8",))


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
            assert s.get(ActionRun, job.id).status == "planned"
    # 4xx: never retried; the ledger holds it as done
    with pytest.raises(NoSuchJobError):
        Job.fetch(job_key(fid, "refuses", 0), connection=hub_runtime.redis)
    with hub_runtime.db.session() as s:
        refused = s.get(ActionRun, job_key(fid, "refuses", 0))
        assert (refused.status, refused.outcome) == ("failed", "refused: HTTP 400 (not retried)")
    assert sorted(r[1] for r in http_sink["requests"]) == ["/down", "/refuses", "/slow"]


def test_a_webhook_to_an_address_not_allowed_fails_for_good_and_sends_nothing(
    hub_runtime: Runtime, rules_dir: Path, http_sink: dict[str, Any]
) -> None:
    """Only what HUB_WEBHOOK_ALLOW lists: 127.0.0.2 allowed does not open 127.0.0.1 (the sink)."""
    hub_runtime.settings = dataclasses.replace(hub_runtime.settings, webhook_allow=("127.0.0.2",))
    url = http_sink["url"].replace("127.0.0.1", "localhost") + "/x?token=s3cret"
    use_rules(hub_runtime, rules_dir, WEBHOOK.replace("URL/contacts/{{ profile.email }}", url))
    (fid,) = post(hub_runtime, fact("order.placed", total=80))
    settle(hub_runtime)
    assert http_sink["requests"] == []
    with pytest.raises(NoSuchJobError):  # refused: not retried
        Job.fetch(job_key(fid, "crm", 0), connection=hub_runtime.redis)
    with hub_runtime.db.session() as s:
        run = s.get(ActionRun, job_key(fid, "crm", 0))
        assert run.status == "failed"
        assert "localhost resolves to" in run.outcome and "not a public address" in run.outcome
        assert "s3cret" not in run.outcome
