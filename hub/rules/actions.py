"""The action registry's types: what a rule file may name under ``then``.

An action is declared once, in its own module of :mod:`hub.actions`, as an
:class:`ActionSpec`: its parameters, their check, its job, its queue and how the scenario
runner shows it. The rule reader, the evaluator and the analysts' tools are handed the
registry (``hub.actions.ACTIONS``) by the process that builds them, so the language does not
import the jobs and the jobs do not import the process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hub.queue import ACTIONS_QUEUE
from hub.templates import render_value


@dataclass(frozen=True)
class Raised:
    """A fact an action raises, as the scenario runner feeds it back to the rules."""

    type: str
    data: dict[str, Any]
    explicit: bool = False  # stored even if no rule listens (the ``emit`` action)


@dataclass(frozen=True)
class Shown:
    """What an action did in a scenario (nothing stored, nothing sent)."""

    result: str  # "done", "skipped" or "refused"
    detail: str = ""
    raised: tuple[Raised, ...] = ()


def no_problems(_params: Any, _templates_dir: Path) -> list[str]:
    """The check of an action whose parameter model says all there is to say."""
    return []


def show_rendered(_profile: dict[str, Any], params: BaseModel, context: dict[str, Any]) -> Shown:
    """How a scenario shows an action that changes nothing in the hub: its rendered parameters."""
    shown = params.model_dump(exclude_none=True, mode="json")
    return Shown("done", str(render_value(shown, context)))


@dataclass(frozen=True)
class ActionSpec:
    """One action rules can take.

    ``job`` is a module-level function, called by RQ with ``job_key``, ``fact_id``,
    ``profile_id``, ``params`` (the validated parameters, as plain data) and ``rule_name``; RQ
    stores it by dotted path, so it must stay importable where it is. ``show`` runs the action
    on a scenario's in-memory profile (which it may change) with the template context
    ``{"profile", "fact"}``.
    """

    name: str
    params: type[BaseModel]
    job: Callable[..., str]
    queue: str = ACTIONS_QUEUE
    check: Callable[[Any, Path], list[str]] = no_problems
    show: Callable[[dict[str, Any], Any, dict[str, Any]], Shown] = field(default=show_rendered)

    @property
    def job_path(self) -> str:
        """The dotted path RQ stores for the job."""
        return f"{self.job.__module__}.{self.job.__qualname__}"


ActionRegistry = Mapping[str, ActionSpec]
