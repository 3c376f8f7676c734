"""The connector guide's example, installed as a separate package through its entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "connector_example"
FILES = ["pyproject.toml", "acme_connector.py", "tests/test_acme.py"]


def test_guide_shows_the_example_files_as_they_are() -> None:
    guide = (ROOT / "docs" / "connectors.md").read_text()
    for name in FILES:
        assert (EXAMPLE / name).read_text().rstrip() in guide, f"{name} differs from the guide"


def test_example_installs_registers_and_passes_its_tests(tmp_path: Path) -> None:
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(target), str(EXAMPLE)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    env = os.environ | {"PYTHONPATH": str(target)}
    listed = subprocess.run(
        [sys.executable, "-m", "hub", "connectors", "types"],
        capture_output=True, text=True, env=env | {"HUB_HOME": str(tmp_path / "home")},
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "acme: Acme Events  streams: registrations" in listed.stdout
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(EXAMPLE / "tests")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "11 passed" in tests.stdout
