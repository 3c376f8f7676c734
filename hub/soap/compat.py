"""Make spyne 2.14 (its last release, 2022) import cleanly on Python 3.11 and 3.12.

spyne ships a copy of ``six`` 1.11 as ``spyne.util.six``. Its lazy ``six.moves`` importer only
implements the ``find_module`` protocol that Python 3.12 removed, so on 3.12 every
``from spyne.util.six.moves... import`` fails with ``ModuleNotFoundError``; on 3.11 it raises
``ImportWarning`` (an error under our ``filterwarnings = error``). The real ``six`` (>= 1.16)
speaks ``find_spec``, so :func:`install` registers, before spyne is first imported, a module
under the vendored name that is the real ``six`` plus the one helper spyne added to its copy
(``get_function_name``), and the real ``six.moves`` modules under the vendored ``moves`` names.
Nothing of spyne is patched or copied and the real ``six`` module is left untouched: the
aliases only decide which ``six`` spyne's own imports resolve to.

spyne's SOAP module also imports ``cgi``, deprecated since 3.11 (removed in 3.13, which the
hub does not support: durable_rules does not load there either); that one warning is silenced
while spyne is imported, so the hub's tests keep failing on every other warning.
"""

from __future__ import annotations

import importlib
import operator
import sys
import types
import warnings

VENDORED = "spyne.util.six"

# Every ``spyne.util.six.moves`` submodule spyne 2.14 imports (grep of its sources).
MOVES = (
    "moves",
    "moves.collections_abc",
    "moves.http_cookies",
    "moves.urllib",
    "moves.urllib.error",
    "moves.urllib.parse",
    "moves.urllib.request",
)

# The spyne modules the hub uses, imported once here under the narrow warning filter.
SPYNE_MODULES = (
    "spyne",
    "spyne.protocol.soap",
    "spyne.server.wsgi",
    "spyne.interface.wsdl",
)


def install() -> None:
    """Alias ``spyne.util.six`` to the real ``six`` and import spyne; safe to call twice.

    Raises:
        RuntimeError: spyne was imported before, with its own ``six`` (too late to fix).
    """
    six = importlib.import_module("six")
    current = sys.modules.get(VENDORED)
    if current is None:
        if "spyne" in sys.modules:
            raise RuntimeError("spyne was imported before hub.soap.compat.install()")
        sys.modules[VENDORED] = _vendored_alias(six)
        for name in MOVES:
            sys.modules[f"{VENDORED}.{name}"] = importlib.import_module(f"six.{name}")
    elif getattr(current, "__wrapped__", None) is not six:
        raise RuntimeError("spyne was imported before hub.soap.compat.install()")
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="'cgi' is deprecated", category=DeprecationWarning
        )
        for module in SPYNE_MODULES:
            importlib.import_module(module)


def _vendored_alias(six: types.ModuleType) -> types.ModuleType:
    """The real ``six`` under spyne's name, with spyne's one addition to its copy."""
    alias = types.ModuleType(VENDORED, six.__doc__)
    alias.__dict__.update({k: v for k, v in vars(six).items() if not k.startswith("__")})
    alias.__wrapped__ = six  # type: ignore[attr-defined]
    alias.get_function_name = operator.attrgetter("__name__")  # type: ignore[attr-defined]
    return alias
