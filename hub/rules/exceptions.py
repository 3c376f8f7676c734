"""Errors of the rule language: every problem of a rule directory, each with its place."""

from __future__ import annotations

from hub.exceptions import HubError


class RuleFileError(HubError):
    """One or more rule files are invalid; ``errors`` holds every problem found."""

    def __init__(self, errors: list[RuleProblem]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class RuleProblem:
    """One problem in a rule file, with its place, printed as ``file:line:column: message``."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The problem as JSON data: ``file``, ``line``, ``column`` and ``message``."""
        return {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }
