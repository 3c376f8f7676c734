"""``hub rules check | test | simulate | backtest | cancel``: the analysts' tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hub.actions import ACTIONS
from hub.actions.followups import UnknownFollowup, cancel, cancel_for_profile
from hub.analysis.backtest import backtest
from hub.analysis.scenarios import run_files
from hub.analysis.simulate import parse_since, simulate
from hub.cli.common import embedded, load_engine_or_exit, read_settings
from hub.db import Database
from hub.facts.schema import validate_facts
from hub.rules.reader import check_rules
from hub.runtime import Runtime


def _rules_dir(path: Path | None) -> Path:
    return path if path is not None else read_settings().rules_dir


@click.group("rules")
def rules() -> None:
    """Rule files."""


@rules.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def rules_check(path: Path | None) -> None:
    """Validate rule files; print each problem as file:line:column: message."""
    ruleset, problems = check_rules(_rules_dir(path), ACTIONS)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        sys.exit(1)
    count = f"{len(ruleset.rules)} rules in {len(ruleset.files)} files"
    click.echo(f"{count} are valid (version {ruleset.version})")


@rules.command("test")
@click.argument("scenarios", required=False, type=click.Path(path_type=Path, exists=True))
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path, exists=True),
    help="Rule directory (default: HUB_RULES_DIR).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show every action of passing scenarios.")
def rules_test(scenarios: Path | None, rules_path: Path | None, verbose: bool) -> None:
    """Run scenario files (default: <rules>/tests) with a simulated clock; exit 1 on failure."""
    rules_dir = _rules_dir(rules_path)
    engine = load_engine_or_exit(rules_dir)
    target = scenarios or rules_dir / "tests"
    results = run_files(engine, target)
    if not results:
        raise click.ClickException(f"no scenarios found under {target}")
    failed = 0
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        click.echo(f"{mark} {result.file}:{result.line}: {result.name}")
        if not result.passed or verbose:
            for outcome in result.outcomes:
                click.echo(f"       {outcome}")
        for failure in result.failures:
            click.echo(f"  !!   {failure}")
        failed += not result.passed
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@rules.command("simulate")
@click.argument("fact_json")
@click.option("--profile", "profile_json", help="The profile as JSON (default: the stored one).")
@click.option("--rules", "rules_path", type=click.Path(path_type=Path, exists=True))
@click.option("--offline", is_flag=True, help="Do not read history or profiles from the database.")
def rules_simulate(
    fact_json: str, profile_json: str | None, rules_path: Path | None, offline: bool
) -> None:
    """Show what the rules would do with FACT_JSON (a JSON object, or @file); no side effect."""
    raw = Path(fact_json[1:]).read_text() if fact_json.startswith("@") else fact_json
    try:
        fact = json.loads(raw)
        profile = json.loads(profile_json) if profile_json else None
    except ValueError as exc:
        raise click.ClickException(f"not valid JSON: {exc}") from None
    facts, errors = validate_facts([fact])
    if errors:
        raise click.ClickException("; ".join(f"{e.field}: {e.message}" for e in errors))
    engine = load_engine_or_exit(_rules_dir(rules_path))
    if offline:
        result = simulate(engine, facts[0], profile)
    else:
        db = Database(read_settings().resolved_database_url)
        try:
            with db.session() as session:
                result = simulate(engine, facts[0], profile, session=session)
                session.rollback()
        finally:
            db.dispose()
    click.echo(json.dumps(result, indent=2, default=str))


@rules.command("backtest")
@click.option("--since", default="30d", show_default=True, help="A duration back (30d) or a date.")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path, exists=True),
    help="The changed rule directory to replay (default: HUB_RULES_DIR).",
)
@click.option("--examples", default=3, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rules_backtest(since: str, rules_path: Path | None, examples: int, as_json: bool) -> None:
    """Replay stored facts against a rule set, with no side effect.

    Per rule, how often it fired and how often it would fire.
    """
    try:
        start = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    engine = load_engine_or_exit(_rules_dir(rules_path))
    db = Database(read_settings().resolved_database_url)
    try:
        report = backtest(db, engine, start, examples=examples)
    finally:
        db.dispose()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    version = report["ruleset_version"]
    click.echo(f"{report['facts']} facts since {report['since']}, rules version {version}")
    click.echo(f"{'rule':40} {'fired':>7} {'would':>7} {'new':>6} {'gone':>6}  examples (fact ids)")
    for row in report["rules"]:
        name = row["rule"] + ("" if row["in_rule_set"] else " (removed)")
        ex = row["examples"]
        sample = ex["newly_firing"] or ex["no_longer_firing"] or ex["would_fire"]
        click.echo(
            f"{name:40} {row['fired']:>7} {row['would_fire']:>7} {row['newly_firing']:>6} "
            f"{row['no_longer_firing']:>6}  {sample}"
        )


@rules.command("cancel")
@click.argument("job_ids", nargs=-1)
@click.option("--profile", "profile_id", type=int, help="Cancel every follow-up of this profile.")
@click.option("--rule", "rule_name", help="With --profile: only this rule's follow-ups.")
def rules_cancel(job_ids: tuple[str, ...], profile_id: int | None, rule_name: str | None) -> None:
    """Cancel scheduled follow-ups by job id (see the profile timeline) or by profile."""
    rt = Runtime.build(embedded(read_settings()), ACTIONS)
    done: list[str] = []
    unknown: list[str] = []
    try:
        for job_id in job_ids:
            try:
                if cancel(rt, job_id):
                    done.append(job_id)
            except UnknownFollowup:
                unknown.append(job_id)
        if profile_id is not None:
            done += cancel_for_profile(rt, profile_id, rule_name)
    finally:
        rt.close()
    for job_id in done:
        click.echo(f"cancelled {job_id}")
    for job_id in unknown:
        click.echo(f"not cancelled (no rule firing recorded this job id): {job_id}", err=True)
    missed = set(job_ids) - set(done) - set(unknown)
    for job_id in sorted(missed):
        click.echo(f"not cancelled (already ran, skipped or cancelled): {job_id}", err=True)
    if missed or unknown:
        sys.exit(1)
