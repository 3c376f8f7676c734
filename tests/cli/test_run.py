"""``hub worker``: it does not start on invalid rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import Settings
from tests.cli.helpers import hub
from tests.conftest import hub_env

BROKEN = """\
rules:
  - name: broken
    when:
      fact: order.placed
      all:
        - data.total: {greater: 5}
    then:
      - send_mail: {template: thank-you, subject: hi}
"""


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_invalid_rules_are_reported_with_file_and_line_and_the_worker_does_not_start(
    settings: Settings, rules_dir: Path
) -> None:
    broken = rules_dir / "broken.yaml"
    broken.write_text(BROKEN)
    check = hub(["rules", "check"], hub_env(settings))
    assert check.returncode == 1
    assert f"{broken}:6:" in check.stderr and "greater" in check.stderr
    worker = hub(["worker", "--burst"], hub_env(settings))
    assert worker.returncode != 0
    assert f"{broken}:6:" in worker.stderr
