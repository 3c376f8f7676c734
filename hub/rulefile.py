"""Rule files: YAML written by analysts, read into :class:`RuleSet` with every error located.

Each problem is reported as ``file:line:column: message``; a file with any problem loads
nothing, so a half-valid rule set never runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hub.conditions import OPERATORS, ROOTS, Compare, Group
from hub.exceptions import RuleFileError, RuleProblem

FACT_PATTERN = re.compile(r"^[a-z0-9_*?-]+(\.[a-z0-9_*?-]+)*$")
RULE_KEYS = ("name", "description", "when", "then")
WHEN_KEYS = ("fact", "all", "any")


@dataclass(frozen=True)
class ActionCall:
    """One action of a rule, with its validated parameters."""

    name: str
    params: dict[str, Any]
    line: int


@dataclass(frozen=True)
class Rule:
    name: str
    file: str
    line: int
    fact_pattern: str
    condition: Group
    actions: tuple[ActionCall, ...]
    description: str = ""


@dataclass(frozen=True)
class RuleSet:
    """Every rule of a rule directory, with the content hash that firings record."""

    rules: tuple[Rule, ...]
    version: str
    files: tuple[str, ...] = field(default=())

    def by_name(self, name: str) -> Rule:
        return next(r for r in self.rules if r.name == name)


class _Mark:
    """Where a node stands in its file (1-based)."""

    __slots__ = ("line", "column")

    def __init__(self, node: yaml.Node) -> None:
        self.line = node.start_mark.line + 1
        self.column = node.start_mark.column + 1


class _Map(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers where it and each of its keys stand."""

    mark: _Mark
    key_marks: dict[Any, _Mark]


class _List(list):  # type: ignore[type-arg]
    mark: _Mark
    item_marks: list[_Mark]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Map:  # type: ignore[override]
        result = _Map()
        result.mark = _Mark(node)
        result.key_marks = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in result:
                raise yaml.MarkedYAMLError(
                    problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_marks[key] = _Mark(key_node)
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> _List:  # type: ignore[override]
        result = _List(self.construct_object(child, deep=True) for child in node.value)
        result.mark = _Mark(node)
        result.item_marks = [_Mark(child) for child in node.value]
        return result


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)


class _Reader:
    """Reads one file, collecting problems instead of stopping at the first."""

    def __init__(self, path: str, templates_dir: Path) -> None:
        self.path = path
        self.templates_dir = templates_dir
        self.problems: list[RuleProblem] = []

    def problem(self, mark: _Mark | None, message: str) -> None:
        line, column = (mark.line, mark.column) if mark else (1, 1)
        self.problems.append(RuleProblem(self.path, line, column, message))

    def read(self, text: str) -> list[Rule]:
        try:
            doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.problems.append(RuleProblem(self.path, line, col, f"YAML: {exc.problem}"))
            return []
        except yaml.YAMLError as exc:
            self.problems.append(RuleProblem(self.path, 1, 1, f"YAML: {exc}"))
            return []
        if doc is None:
            return []
        if not isinstance(doc, _Map) or set(doc) != {"rules"}:
            self.problem(getattr(doc, "mark", None), "a rule file holds one key, 'rules'")
            return []
        items = doc["rules"]
        if not isinstance(items, _List):
            self.problem(doc.key_marks["rules"], "'rules' must be a list of rules")
            return []
        rules = []
        for item, mark in zip(items, items.item_marks, strict=True):
            rule = self.rule(item, mark)
            if rule is not None:
                rules.append(rule)
        return rules

    def rule(self, item: Any, mark: _Mark) -> Rule | None:
        if not isinstance(item, _Map):
            self.problem(mark, "a rule must be a mapping with name, when and then")
            return None
        before = len(self.problems)
        for key in item:
            if key not in RULE_KEYS:
                self.problem(
                    item.key_marks[key],
                    f"unknown key {key!r} in rule; expected one of {', '.join(RULE_KEYS)}",
                )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem(item.mark, "rule needs a 'name' (text)")
        for key in ("when", "then"):
            if key not in item:
                self.problem(item.mark, f"rule {name!r} needs '{key}'")
        pattern, condition = self.when(item.get("when"), item.key_marks.get("when", item.mark))
        actions = self.then(item.get("then"), item.key_marks.get("then", item.mark))
        if len(self.problems) > before or pattern is None or condition is None:
            return None
        return Rule(
            name=str(name),
            file=self.path,
            line=item.mark.line,
            fact_pattern=pattern,
            condition=condition,
            actions=tuple(actions),
            description=str(item.get("description", "")),
        )

    def when(self, when: Any, mark: _Mark) -> tuple[str | None, Group | None]:
        if when is None:
            return None, None
        if not isinstance(when, _Map):
            self.problem(mark, "'when' must be a mapping with 'fact' and optional 'all' or 'any'")
            return None, None
        for key in when:
            if key not in WHEN_KEYS:
                self.problem(
                    when.key_marks[key],
                    f"unknown key {key!r} in when; expected one of {', '.join(WHEN_KEYS)}",
                )
        pattern = when.get("fact")
        if not isinstance(pattern, str) or not FACT_PATTERN.match(pattern):
            self.problem(
                when.key_marks.get("fact", when.mark),
                "'fact' must be a fact type such as order.placed or a glob such as order.*",
            )
            pattern = None
        items = []
        for kind in ("all", "any"):
            if kind in when:
                group = self.group(kind, when[kind], when.key_marks[kind])
                if group is not None:
                    items.append(group)
        return pattern, Group("all", tuple(items))

    def group(self, kind: str, items: Any, mark: _Mark) -> Group | None:
        if not isinstance(items, _List) or not items:
            self.problem(mark, f"'{kind}' must be a non-empty list of conditions")
            return None
        out = []
        for item, item_mark in zip(items, items.item_marks, strict=True):
            out.extend(self.condition(item, item_mark))
        return Group(kind, tuple(out))  # type: ignore[arg-type]

    def condition(self, item: Any, mark: _Mark) -> list[Group | Compare]:
        if not isinstance(item, _Map) or len(item) != 1:
            self.problem(mark, "a condition is one 'path: value' or 'path: {operator: value}'")
            return []
        ((path, spec),) = item.items()
        key_mark = item.key_marks[path]
        if path in ("all", "any"):
            group = self.group(path, spec, key_mark)
            return [group] if group else []
        if not isinstance(path, str) or path.split(".", 1)[0] not in ROOTS or "." not in path:
            self.problem(
                key_mark, f"condition path {path!r} must start with data., profile. or fact."
            )
            return []
        if not isinstance(spec, _Map):
            return [Compare(path, "eq", _plain(spec))]
        out: list[Group | Compare] = []
        for op, value in spec.items():
            op_mark = spec.key_marks[op]
            if op not in OPERATORS:
                self.problem(
                    op_mark, f"unknown operator {op!r}; expected one of {', '.join(OPERATORS)}"
                )
            elif op == "in" and not isinstance(value, list):
                self.problem(op_mark, "'in' takes a list of values")
            elif op in ("gt", "gte", "lt", "lte") and (
                isinstance(value, bool) or not isinstance(value, int | float | str)
            ):
                self.problem(op_mark, f"'{op}' compares with a number or a text, not {value!r}")
            else:
                out.append(Compare(path, op, _plain(value)))
        return out

    def then(self, then: Any, mark: _Mark) -> list[ActionCall]:
        from hub.actions import ACTIONS  # the registry imports action modules

        if then is None:
            return []
        if not isinstance(then, _List) or not then:
            self.problem(mark, "'then' must be a non-empty list of actions")
            return []
        calls = []
        for item, item_mark in zip(then, then.item_marks, strict=True):
            if not isinstance(item, _Map) or len(item) != 1:
                self.problem(item_mark, "an action is one 'action_name: {parameters}'")
                continue
            ((name, params),) = item.items()
            key_mark = item.key_marks[name]
            spec = ACTIONS.get(name)
            if spec is None:
                self.problem(
                    key_mark,
                    f"unknown action {name!r}; expected one of {', '.join(sorted(ACTIONS))}",
                )
                continue
            try:
                model: BaseModel = spec.params.model_validate(_plain(params or {}))
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    where = ".".join(str(p) for p in err["loc"]) or name
                    msg = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
                    self.problem(key_mark, f"{name}: {where}: {msg.removeprefix('Value error, ')}")
                continue
            for message in spec.check(model, self.templates_dir):
                self.problem(key_mark, f"{name}: {message}")
            calls.append(ActionCall(name, model.model_dump(exclude_none=True), key_mark.line))
        return calls


def _plain(value: Any) -> Any:
    """Strip the position bookkeeping so values are plain dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def rule_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def check_rules(path: Path, templates_dir: Path | None = None) -> tuple[RuleSet, list[RuleProblem]]:
    """Read every rule file under ``path``; return the rules and every problem found."""
    files = rule_files(path)
    templates_dir = templates_dir or (path if path.is_dir() else path.parent) / "templates"
    problems: list[RuleProblem] = []
    rules: list[Rule] = []
    digest = hashlib.sha256()
    if not path.exists():
        problems.append(RuleProblem(str(path), 1, 1, "rule directory does not exist"))
    for file in files:
        text = file.read_text(encoding="utf-8")
        digest.update(file.name.encode() + b"\0" + text.encode() + b"\0")
        reader = _Reader(str(file), templates_dir)
        rules.extend(reader.read(text))
        problems.extend(reader.problems)
    for tpl in sorted(templates_dir.glob("*")) if templates_dir.is_dir() else []:
        digest.update(tpl.name.encode() + b"\0" + tpl.read_bytes() + b"\0")
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.name in seen:
            first = seen[rule.name]
            problems.append(
                RuleProblem(
                    rule.file,
                    rule.line,
                    1,
                    f"duplicate rule name {rule.name!r} (first at {first.file}:{first.line})",
                )
            )
        seen.setdefault(rule.name, rule)
    return RuleSet(tuple(rules), digest.hexdigest()[:16], tuple(str(f) for f in files)), problems


def load_rules(path: Path, templates_dir: Path | None = None) -> RuleSet:
    """The rule set under ``path``; raise :class:`RuleFileError` listing every problem."""
    ruleset, problems = check_rules(path, templates_dir)
    if problems:
        raise RuleFileError(problems)
    return ruleset
