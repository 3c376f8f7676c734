"""The contact hub: facts in, rules evaluated, actions out."""

from __future__ import annotations

__version__ = "0.1.0"
