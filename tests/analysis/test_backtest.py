"""Back-test: stored facts replayed against a changed rule set, reported per rule."""

from __future__ import annotations

import shutil
from pathlib import Path

from hub.actions import ACTIONS
from hub.analysis.backtest import backtest
from hub.analysis.simulate import parse_since
from hub.rules.engine import RuleEngine
from hub.rules.reader import load_rules
from hub.runtime import Runtime
from hub.worker.drain import drain_pending
from tests.analysis.test_simulate import CONSENT, counts
from tests.rules.test_language import fact, post


def test_backtest_reports_fired_and_would_fire_per_rule(
    hub_runtime: Runtime, rules_dir: Path, tmp_path: Path
) -> None:
    post(
        hub_runtime,
        *[
            fact("order.placed", email=f"p{i}@example.com", total=t)
            | {"profile": {"email": f"p{i}@example.com", "consent": CONSENT}}
            for i, t in enumerate((20, 60, 150, 300))
        ],
    )
    drain_pending()
    before = counts(hub_runtime)
    changed = tmp_path / "changed"
    shutil.copytree(rules_dir, changed)
    orders = changed / "orders.yaml"
    orders.write_text(orders.read_text().replace("data.total: {gte: 50}", "data.total: {gte: 100}"))
    report = backtest(hub_runtime.db, RuleEngine(load_rules(changed, ACTIONS)), parse_since("1d"))
    rows = {r["rule"]: r for r in report["rules"]}
    assert report["facts"] == 4
    thanks = rows["thank-you-for-your-order"]
    assert (
        thanks["fired"],
        thanks["would_fire"],
        thanks["newly_firing"],
        thanks["no_longer_firing"],
    ) == (3, 2, 0, 1)
    assert thanks["examples"]["no_longer_firing"] == [2]
    assert (rows["tag-every-shopper"]["fired"], rows["tag-every-shopper"]["would_fire"]) == (4, 4)
    assert counts(hub_runtime) == before
