"""The actions a rule can take, each an idempotent RQ job declared in a module of its own.

Every module of this package that declares an :class:`~hub.rules.actions.ActionSpec` at its
top level adds that action to :data:`ACTIONS`; nothing else lists them. A job is idempotent by
its key (fact, rule, action index): run twice, or for a fact evaluated twice, it takes effect
once (see :mod:`hub.actions.ledger`).
"""

from __future__ import annotations

import importlib
import pkgutil

from hub.rules.actions import ActionRegistry, ActionSpec


def discover() -> dict[str, ActionSpec]:
    """Every action declared by a module of this package, by name.

    Raises:
        ValueError: two modules declare actions of the same name.
    """
    found: dict[str, ActionSpec] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if not isinstance(value, ActionSpec) or found.get(value.name) is value:
                continue
            if value.name in found:
                raise ValueError(f"action {value.name!r} is declared twice ({module.__name__})")
            found[value.name] = value
    return dict(sorted(found.items()))


ACTIONS: ActionRegistry = discover()
