"""``hub consent reclassify``: the profiles an earlier release subscribed by default."""

from __future__ import annotations

from sqlalchemy import select

from hub.config import Settings
from hub.db import Database
from hub.models import ConsentEvent, Profile
from tests.cli.helpers import hub
from tests.conftest import hub_env


def test_reclassify_counts_first_then_changes_only_profiles_without_consent_on_record(
    settings: Settings,
) -> None:
    db = Database(settings.resolved_database_url)
    db.upgrade()
    with db.session() as session:  # as an earlier release left them: subscribed, no ledger
        session.add_all(
            [
                Profile(email="old@example.com", status="subscribed", fields={}, tags=[]),
                Profile(email="gone@example.com", status="unsubscribed", fields={}, tags=[]),
            ]
        )
        proven = Profile(email="proven@example.com", status="subscribed", fields={}, tags=[])
        session.add(proven)
        session.flush()
        session.add(
            ConsentEvent(
                profile_id=proven.id,
                source="form",
                stated="subscribed",
                status_before="unconfirmed",
                status_after="subscribed",
                outcome="applied",
                proof="double opt-in",
                evidence={},
            )
        )
    env = hub_env(settings)
    counted = hub(["consent", "reclassify"], env)
    assert counted.returncode == 0, counted.stderr
    assert counted.stdout.startswith("1 profile(s) are subscribed with no consent on record")
    with db.session() as session:
        assert (
            session.scalar(select(Profile.status).where(Profile.email == "old@example.com"))
            == "subscribed"
        )
    applied = hub(["consent", "reclassify", "--apply"], env)
    assert applied.returncode == 0, applied.stderr
    with db.session() as session:
        statuses = dict(session.execute(select(Profile.email, Profile.status)).all())
        assert statuses == {
            "old@example.com": "unconfirmed",
            "gone@example.com": "unsubscribed",
            "proven@example.com": "subscribed",
        }
        (event,) = session.scalars(select(ConsentEvent).where(ConsentEvent.source == "operator"))
        assert (event.status_before, event.status_after) == ("subscribed", "unconfirmed")
    db.dispose()
