"""Rule files: YAML written by analysts, read into :class:`RuleSet` with every error located.

Each problem is reported as ``file:line:column: message``; a file with any problem loads
nothing, so a half-valid rule set never runs.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hub.rules.actions import ActionRegistry
from hub.rules.checks import emit_cycles, own_fact_fields, unknown_fact_types
from hub.rules.conditions import (
    OPERATORS,
    ROOTS,
    Compare,
    Condition,
    Group,
    History,
    parse_duration,
)
from hub.rules.exceptions import RuleFileError, RuleProblem
from hub.rules.model import ActionCall, Rule, RuleSet
from hub.templates import compile_error

FACT_PATTERN = re.compile(r"^[a-z0-9_*?-]+(\.[a-z0-9_*?-]+)*$")
RULE_KEYS = (
    "name",
    "description",
    "when",
    "then",
    "priority",
    "once_per_profile",
    "at_most",
    "stop",
)
WHEN_KEYS = ("fact", "all", "any", "none")
ACTION_KEYS = ("after", "at", "unless")
HISTORY_KEYS = ("fact", "within", "since", "where", "count")
_AT_MOST = re.compile(r"^(\d+)\s+per\s+(\S+)$")


class _Mark:
    """Where a node stands in its file (1-based)."""

    __slots__ = ("line", "column")

    def __init__(self, node: yaml.Node) -> None:
        self.line = node.start_mark.line + 1
        self.column = node.start_mark.column + 1


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys stand."""

    mark: _Mark
    key_marks: dict[Any, _Mark]


class _List(list[Any]):
    mark: _Mark
    item_marks: list[_Mark]


class _Loader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> _Map:
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

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> _List:
        result = _List(self.construct_object(child, deep=True) for child in node.value)
        result.mark = _Mark(node)
        result.item_marks = [_Mark(child) for child in node.value]
        return result


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)


def _suggest(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Reader:
    """Reads one file, collecting problems instead of stopping at the first."""

    def __init__(self, path: str, templates_dir: Path, actions: ActionRegistry) -> None:
        self.path = path
        self.templates_dir = templates_dir
        self.actions = actions
        self.problems: list[RuleProblem] = []
        self.fact_types: list[str] = []
        self.pattern_marks: dict[str, _Mark] = {}

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
        if not isinstance(doc, _Map) or "rules" not in doc or set(doc) - {"rules", "fact_types"}:
            self.problem(
                getattr(doc, "mark", None),
                "a rule file holds 'rules' (and optionally 'fact_types', new fact types)",
            )
            return []
        declared = doc.get("fact_types", [])
        if not isinstance(declared, list) or not all(
            isinstance(t, str) and FACT_PATTERN.match(t) and "*" not in t for t in declared
        ):
            self.problem(doc.key_marks.get("fact_types"), "'fact_types' is a list of fact types")
        else:
            self.fact_types = list(declared)
        items = doc["rules"]
        if not isinstance(items, _List):
            self.problem(doc.key_marks["rules"], "'rules' must be a list of rules")
            return []
        rules = []
        for item, item_mark in zip(items, items.item_marks, strict=True):
            rule = self.rule(item, item_mark)
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
                    f"unknown key {key!r} in rule{_suggest(key, RULE_KEYS)} "
                    f"(expected one of {', '.join(RULE_KEYS)})",
                )
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem(item.mark, "rule needs a 'name' (text)")
        for key in ("when", "then"):
            if key not in item:
                self.problem(item.mark, f"rule {name!r} needs '{key}'")
        pattern, condition = self.when(item.get("when"), item.key_marks.get("when", item.mark))
        actions = self.then(item.get("then"), item.key_marks.get("then", item.mark))
        limits = self.limits(item)
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
            **limits,
        )

    def limits(self, item: _Map) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "priority" in item:
            value = item["priority"]
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(item.key_marks["priority"], "'priority' is a whole number")
            else:
                out["priority"] = value
        for flag in ("once_per_profile", "stop"):
            if flag in item:
                if not isinstance(item[flag], bool):
                    self.problem(item.key_marks[flag], f"'{flag}' is true or false")
                else:
                    out[flag] = item[flag]
        if "at_most" in item:
            match = _AT_MOST.match(str(item["at_most"]).strip())
            try:
                if match is None or int(match.group(1)) < 1:
                    raise ValueError
                out["at_most"] = (int(match.group(1)), parse_duration(match.group(2)))
            except ValueError:
                self.problem(
                    item.key_marks["at_most"], "'at_most' is 'N per DURATION', such as '1 per 7d'"
                )
        return out

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
                    f"unknown key {key!r} in when{_suggest(key, WHEN_KEYS)} "
                    f"(expected one of {', '.join(WHEN_KEYS)})",
                )
        pattern = self.fact_pattern(when.get("fact"), when.key_marks.get("fact", when.mark))
        items = []
        for kind in ("all", "any", "none"):
            if kind in when:
                group = self.group(kind, when[kind], when.key_marks[kind])
                if group is not None:
                    items.append(group)
        return pattern, Group("all", tuple(items))

    def fact_pattern(self, pattern: Any, mark: _Mark) -> str | None:
        if not isinstance(pattern, str) or not FACT_PATTERN.match(pattern):
            self.problem(
                mark, "'fact' must be a fact type such as order.placed or a glob such as order.*"
            )
            return None
        self.pattern_marks.setdefault(pattern, mark)
        return pattern

    def group(self, kind: str, items: Any, mark: _Mark) -> Group | None:
        if not isinstance(items, _List) or not items:
            self.problem(mark, f"'{kind}' must be a non-empty list of conditions")
            return None
        out = []
        for item, item_mark in zip(items, items.item_marks, strict=True):
            out.extend(self.condition(item, item_mark))
        return Group(kind, tuple(out))  # type: ignore[arg-type]

    def condition(self, item: Any, mark: _Mark) -> list[Condition]:
        if not isinstance(item, _Map) or len(item) != 1:
            self.problem(mark, "a condition is one 'path: value' or 'path: {operator: value}'")
            return []
        ((path, spec),) = item.items()
        key_mark = item.key_marks[path]
        if path in ("all", "any", "none"):
            group = self.group(path, spec, key_mark)
            return [group] if group else []
        if path == "history":
            history = self.history(spec, key_mark)
            return [history] if history else []
        if not isinstance(path, str) or path.split(".", 1)[0] not in ROOTS or "." not in path:
            self.problem(
                key_mark,
                f"condition path {path!r} must start with data., profile. or fact. "
                "(or be all, any, none or history)",
            )
            return []
        if not isinstance(spec, _Map):
            if isinstance(spec, list | dict):
                self.problem(key_mark, f"{path}: compare with one value; for a list use 'in'")
                return []
            return [Compare(path, "eq", _plain(spec))]
        out: list[Condition] = []
        for op, value in spec.items():
            op_mark = spec.key_marks[op]
            if op not in OPERATORS:
                self.problem(
                    op_mark,
                    f"unknown operator {op!r}{_suggest(op, OPERATORS)} "
                    f"(expected one of {', '.join(OPERATORS)})",
                )
                continue
            message = _operand_problem(op, _plain(value))
            if message:
                self.problem(op_mark, message)
            else:
                out.append(Compare(path, op, _plain(value)))
        return out

    def history(self, spec: Any, mark: _Mark) -> History | None:
        if not isinstance(spec, _Map) or "fact" not in spec:
            self.problem(mark, "'history' needs a mapping with 'fact' (and within, where, count)")
            return None
        before = len(self.problems)
        for key in spec:
            if key not in HISTORY_KEYS:
                self.problem(
                    spec.key_marks[key],
                    f"unknown key {key!r} in history{_suggest(key, HISTORY_KEYS)} "
                    f"(expected one of {', '.join(HISTORY_KEYS)})",
                )
        pattern = self.fact_pattern(spec["fact"], spec.key_marks["fact"])
        within = None
        if "within" in spec:
            try:
                within = parse_duration(spec["within"])
            except ValueError as exc:
                self.problem(spec.key_marks["within"], f"history within: {exc}")
        since = spec.get("since")
        if since is not None and since != "trigger":
            self.problem(spec.key_marks["since"], "history 'since' can only be 'trigger'")
        where = None
        if "where" in spec:
            where = self.group("all", spec["where"], spec.key_marks["where"])
        count_op, count = "gte", 1
        if "count" in spec:
            raw = _plain(spec["count"])
            if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
                count_op, count = "eq", raw
            elif (
                isinstance(raw, dict)
                and len(raw) == 1
                and next(iter(raw)) in ("eq", "ne", "gt", "gte", "lt", "lte")
                and isinstance(next(iter(raw.values())), int)
            ):
                ((count_op, count),) = raw.items()
            else:
                self.problem(
                    spec.key_marks["count"], "history count is a number or {gte|lte|...: number}"
                )
        if len(self.problems) > before or pattern is None:
            return None
        return History(pattern, where, within, since == "trigger", count_op, count)

    def then(self, then: Any, mark: _Mark) -> list[ActionCall]:
        if then is None:
            return []
        if not isinstance(then, _List) or not then:
            self.problem(mark, "'then' must be a non-empty list of actions")
            return []
        calls = []
        for item, item_mark in zip(then, then.item_marks, strict=True):
            names = [k for k in item if k not in ACTION_KEYS] if isinstance(item, _Map) else []
            if len(names) != 1:
                self.problem(
                    item_mark,
                    "an action is one 'action_name: {parameters}', optionally with after, "
                    "at and unless",
                )
                continue
            name = names[0]
            params = item[name]
            key_mark = item.key_marks[name]
            spec = self.actions.get(name)
            if spec is None:
                self.problem(
                    key_mark,
                    f"unknown action {name!r}{_suggest(name, self.actions)} "
                    f"(expected one of {', '.join(sorted(self.actions))})",
                )
                continue
            try:
                model: BaseModel = spec.params.model_validate(_plain(params or {}))
            except ValidationError as exc:
                fields = list(spec.params.model_fields)
                for err in exc.errors(include_url=False):
                    where = ".".join(str(p) for p in err["loc"]) or name
                    msg = err["msg"].removeprefix("Value error, ")
                    if err["type"] == "extra_forbidden":
                        msg = f"unknown parameter{_suggest(err['loc'][-1], fields)}"
                    self.problem(key_mark, f"{name}: {where}: {msg}")
                continue
            for message in spec.check(model, self.templates_dir):
                self.problem(key_mark, f"{name}: {message}")
            timing = self.timing(item)
            if timing is None:
                continue
            calls.append(
                ActionCall(name, model.model_dump(exclude_none=True), key_mark.line, *timing)
            )
        return calls

    def timing(self, item: _Map) -> tuple[int | None, str | None, Group | None] | None:

        before = len(self.problems)
        after = at = unless = None
        if "after" in item:
            try:
                after = parse_duration(item["after"])
            except ValueError as exc:
                self.problem(item.key_marks["after"], f"after: {exc}")
        if "at" in item:
            at = item["at"]
            if not isinstance(at, str) or not at.strip():
                self.problem(item.key_marks["at"], "at: a date/time or a template giving one")
            elif err := compile_error(at):
                self.problem(item.key_marks["at"], f"at: template does not compile: {err}")
        if after is not None and at is not None:
            self.problem(item.key_marks["at"], "give either 'after' or 'at', not both")
        if "unless" in item:
            unless = self.group("any", item["unless"], item.key_marks["unless"])
            if "after" not in item and "at" not in item:
                self.problem(
                    item.key_marks["unless"], "'unless' is checked when a delay ends: add 'after'"
                )
        if len(self.problems) > before:
            return None
        return after, at, unless


def _operand_problem(op: str, value: Any) -> str | None:
    """Why ``value`` cannot be the operand of ``op``, or None."""
    scalar = value is None or isinstance(value, bool | int | float | str)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            return f"'{op}' takes a non-empty list of values"
        if not all(v is None or isinstance(v, bool | int | float | str) for v in value):
            return f"'{op}' takes a list of plain values (text, numbers, true/false, null)"
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
            return f"'{op}' compares with a number or a non-empty text, not {value!r}"
    elif op in ("eq", "ne"):
        if not scalar:
            return f"'{op}' compares with one plain value, not {value!r}"
    elif op == "contains":
        if not isinstance(value, bool | int | float | str) or value == "":
            return f"'contains' takes a non-empty text or a number, not {value!r}"
    elif op == "matches":
        if not isinstance(value, str):
            return "'matches' takes a regular expression (text)"
        if "\\" in value:
            return "'matches': no backslash escapes; write a literal dot as [.]"
        try:
            re.compile(value)
        except re.error as exc:
            return f"'matches': invalid regular expression: {exc}"
    elif op in ("exists", "missing"):
        if value not in (True, None):
            return f"'{op}' takes no value (write '{op}: true')"
    elif op in ("within", "before"):
        try:
            parse_duration(value)
        except ValueError as exc:
            return f"'{op}': {exc}"
    return None


def _plain(value: Any) -> Any:
    """Strip the position bookkeeping so values are plain dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def rule_files(path: Path) -> list[Path]:
    """The rule files of ``path``: that file, or a directory's ``*.yaml`` and ``*.yml``, sorted."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def check_rules(
    path: Path, actions: ActionRegistry, templates_dir: Path | None = None
) -> tuple[RuleSet, list[RuleProblem]]:
    """Read every rule file under ``path``; return the rules and every problem found.

    ``actions`` is the registry of actions rules may name (``hub.actions.ACTIONS``).
    """
    files = rule_files(path)
    templates_dir = templates_dir or (path if path.is_dir() else path.parent) / "templates"
    problems: list[RuleProblem] = []
    rules: list[Rule] = []
    readers: list[_Reader] = []
    digest = hashlib.sha256()
    if not path.exists():
        problems.append(RuleProblem(str(path), 1, 1, "rule directory does not exist"))
    for file in files:
        text = file.read_text(encoding="utf-8")
        digest.update(file.name.encode() + b"\0" + text.encode() + b"\0")
        reader = _Reader(str(file), templates_dir, actions)
        rules.extend(reader.read(text))
        problems.extend(reader.problems)
        readers.append(reader)
    for tpl in sorted(templates_dir.glob("*")) if templates_dir.is_dir() else []:
        if tpl.is_file():
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
    declared = {t for reader in readers for t in reader.fact_types}
    patterns = [
        (reader.path, pattern, mark.line, mark.column)
        for reader in readers
        for pattern, mark in reader.pattern_marks.items()
    ]
    problems.extend(unknown_fact_types(patterns, declared, rules))
    problems.extend(emit_cycles(rules))
    problems.extend(own_fact_fields(rules))
    return RuleSet(tuple(rules), digest.hexdigest()[:16], tuple(str(f) for f in files)), problems


def load_rules(path: Path, actions: ActionRegistry, templates_dir: Path | None = None) -> RuleSet:
    """The rule set under ``path``; raise :class:`RuleFileError` listing every problem."""
    ruleset, problems = check_rules(path, actions, templates_dir)
    if problems:
        raise RuleFileError(problems)
    return ruleset


def directory_fingerprint(path: Path) -> str:
    """Cheap change detection for a rule directory: names, sizes and times of its files."""
    digest = hashlib.sha256()
    templates = path / "templates" if path.is_dir() else path.parent / "templates"
    files = rule_files(path) if path.exists() else []
    files += sorted(templates.glob("*")) if templates.is_dir() else []
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            continue
        digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()
