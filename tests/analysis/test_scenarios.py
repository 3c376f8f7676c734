"""``hub rules test``: scenario files run with a simulated clock, nothing stored or sent."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hub.cli.main import main
from tests.conftest import ROOT


def test_shipped_scenarios_pass_and_a_wrong_one_fails(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["rules", "test", "--rules", str(ROOT / "rules")])
    assert ok.exit_code == 0, ok.output
    assert "0 failed" in ok.output
    (tmp_path / "wrong.yaml").write_text(
        "scenarios:\n"
        "  - name: expects a mail that the unless stops\n"
        "    timeline:\n"
        "      - {at: 0m, fact: {type: cart.abandoned, data: {items: [x]}}}\n"
        "      - {at: 1h, fact: {type: order.placed, data: {total: 5}}}\n"
        "    expect:\n"
        "      - {rule: remind-abandoned-carts, action: send_mail, at: 1d}\n"
    )
    wrong = runner.invoke(main, ["rules", "test", str(tmp_path), "--rules", str(ROOT / "rules")])
    assert wrong.exit_code == 1
    assert f"FAIL {tmp_path}/wrong.yaml:2: expects a mail that the unless stops" in wrong.output
    assert "skipped (unless history of order.placed since the trigger" in wrong.output
