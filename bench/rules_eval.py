"""Rule evaluation rate: the hub's engine layer next to durable_rules alone, same rules, same run.

For 10, 100 and 1,000 generated rules (fact types, globs, comparisons, ``in``, ``contains``,
``none`` groups, as analysts write them) it measures:

* durable_rules through its Python API: ``assert_fact`` + ``retract_fact`` of ready-made
  messages on the very ruleset the hub compiled, no-op actions (what a durable_rules program
  gets);
* durable_rules' C engine alone on the same ruleset and ready-made JSON (the raw limit);
* the hub: :meth:`hub.rules.engine.RuleEngine.match` on plain documents (building each message with
  its ``_t`` kinds, asserting, retracting, Python residuals, priority order).

The hub's layer must keep at least half of durable_rules' rate through its Python API. Run::

    python bench/rules_eval.py [--facts 5000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import durable_engine_rate, durable_host_rate  # noqa: E402
from hub.rules.conditions import Compare, Group  # noqa: E402
from hub.rules.engine import RuleEngine  # noqa: E402
from hub.rules.model import Rule, RuleSet  # noqa: E402

TYPES = [
    f"{noun}.{verb}"
    for noun in ("order", "cart", "form", "mail", "profile")
    for verb in ("placed", "updated", "submitted", "clicked", "opened", "created")
]
PATHS = [f"data.f{i}" for i in range(8)] + [
    "profile.status",
    "profile.tags",
    "profile.fields.score",
]


def random_condition(rng: random.Random) -> Any:
    path = rng.choice(PATHS[:8] + ["profile.fields.score"])
    kind = rng.random()
    if kind < 0.4:
        return Compare(path, rng.choice(["gt", "gte", "lt", "lte"]), rng.randint(0, 100))
    if kind < 0.6:
        return Compare(path, "eq", rng.randint(0, 10))
    if kind < 0.75:
        return Compare("profile.status", "in", ["subscribed", "unsubscribed"])
    if kind < 0.9:
        return Compare("profile.tags", "contains", rng.choice(["vip", "buyer", "new"]))
    return Group("none", (Compare(path, "lt", rng.randint(0, 50)),))


def ruleset(n: int, rng: random.Random) -> RuleSet:
    rules = []
    for i in range(n):
        pattern = (
            rng.choice(TYPES) if rng.random() < 0.85 else rng.choice(TYPES).split(".")[0] + ".*"
        )
        conds = tuple(random_condition(rng) for _ in range(rng.randint(1, 3)))
        rules.append(Rule(f"rule-{i}", "bench.yaml", i + 1, pattern, Group("all", conds), ()))
    return RuleSet(tuple(rules), f"bench-{n}")


def documents(count: int, rng: random.Random) -> list[dict[str, Any]]:
    docs = []
    for i in range(count):
        docs.append(
            {
                "type": rng.choice(TYPES),
                "fact": {"id": i, "source": "bench"},
                "data": {f"f{k}": rng.randint(0, 100) for k in range(8) if rng.random() < 0.8},
                "profile": {
                    "status": rng.choice(["subscribed", "unsubscribed", "bounced"]),
                    "tags": rng.sample(["vip", "buyer", "new", "x"], rng.randint(0, 2)),
                    "fields": {"score": rng.randint(0, 100)},
                },
            }
        )
    return docs


def hub_layer(engine: RuleEngine, docs: list[dict[str, Any]]) -> tuple[float, int]:
    start = time.perf_counter()
    results = engine.match(docs)
    rate = len(docs) / (time.perf_counter() - start)
    return rate, sum(1 for r in results if r)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(
        f"{'rules':>6} {'compile s':>10} {'durable API/s':>16} {'C engine/s':>12} "
        f"{'hub layer/s':>12} {'ratio':>6} {'facts with a firing':>20}"
    )
    ok = True
    for n in (10, 100, 1000):
        rules = ruleset(n, rng)
        docs = documents(args.facts, rng)
        start = time.perf_counter()
        engine = RuleEngine(rules)
        compile_s = time.perf_counter() - start
        durable_host_rate(engine, docs[:200])  # warm up
        hub_layer(engine, docs[:200])
        raw, raw_hits = durable_host_rate(engine, docs)
        c_engine, _ = durable_engine_rate(engine, docs)
        hub, hub_hits = hub_layer(engine, docs)
        ratio = hub / raw
        ok &= ratio >= 0.5
        print(
            f"{n:>6} {compile_s:>10.2f} {raw:>16,.0f} {c_engine:>12,.0f} {hub:>12,.0f} "
            f"{ratio:>6.2f} {hub_hits:>10} (durable {raw_hits})"
        )
    print("hub layer keeps at least half of durable_rules' rate:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
