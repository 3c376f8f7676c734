"""Running ``hub`` as an operator does: a child process with the test's environment."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def hub(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
