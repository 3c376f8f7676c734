"""Actions are found by convention: a module of hub.actions that declares an ActionSpec."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from hub.actions import ACTIONS, discover
from hub.actions.batch import resolve
from hub.queue import ACTIONS_QUEUE, MAIL_QUEUE

HUB = Path(__file__).resolve().parents[2] / "hub"


def test_every_action_module_declares_its_action() -> None:
    assert list(ACTIONS) == [
        "create_profile",
        "emit",
        "resubscribe",
        "send_mail",
        "unsubscribe",
        "update_profile",
        "webhook",
    ]
    paths = {name: spec.job_path for name, spec in ACTIONS.items()}
    assert paths == {
        "create_profile": "hub.actions.create_profile.create_profile",
        "emit": "hub.actions.emit.emit",
        "resubscribe": "hub.actions.subscription.resubscribe",
        "send_mail": "hub.actions.send_mail.send_mail",
        "unsubscribe": "hub.actions.subscription.unsubscribe",
        "update_profile": "hub.actions.update_profile.update_profile",
        "webhook": "hub.actions.webhook.webhook",
    }
    for spec in ACTIONS.values():  # RQ stores the path: it must lead back to the job
        assert resolve(spec.job_path) is spec.job
    assert {n for n, s in ACTIONS.items() if s.queue == MAIL_QUEUE} == {"send_mail"}
    assert {s.queue for s in ACTIONS.values()} == {ACTIONS_QUEUE, MAIL_QUEUE}


def test_modules_that_import_an_action_do_not_declare_it_again() -> None:
    # hub.actions.profile and hub.actions.mail (old job paths) import the jobs of others
    again = discover()
    assert again == dict(ACTIONS)
    assert all(again[name] is spec for name, spec in ACTIONS.items())


def _import_actions(tmp_path: Path, module: str, text: str) -> subprocess.CompletedProcess[str]:
    """Import hub.actions from a copy of the hub with one more module in hub/actions/."""
    shutil.copytree(HUB, tmp_path / "hub", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "hub" / "actions" / f"{module}.py").write_text(textwrap.dedent(text))
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import hub, hub.actions as a; print(hub.__file__); print(' '.join(a.ACTIONS))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


NEW_ACTION = """
    from pydantic import BaseModel

    from hub.rules.actions import ActionSpec


    class NoParams(BaseModel):
        pass


    def nothing(job_key, fact_id, profile_id, params, rule_name=""):
        return "done"


    NOTHING = ActionSpec(name="{name}", params=NoParams, job=nothing)
"""


def test_a_module_dropped_in_is_an_action_without_being_listed(tmp_path: Path) -> None:
    done = _import_actions(tmp_path, "nothing", NEW_ACTION.replace("{name}", "do_nothing"))
    assert done.returncode == 0, done.stderr
    where, names = done.stdout.splitlines()
    assert where == str(tmp_path / "hub" / "__init__.py")  # the copy, not the installed hub
    assert names.split() == sorted([*ACTIONS, "do_nothing"])


def test_two_modules_declaring_one_name_stop_the_import(tmp_path: Path) -> None:
    done = _import_actions(tmp_path, "zz_mailer", NEW_ACTION.replace("{name}", "send_mail"))
    assert done.returncode != 0
    assert "ValueError: action 'send_mail' is declared twice" in done.stderr
