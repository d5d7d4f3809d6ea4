"""Callers and versions kept in memory between data calls (`accounts/stamp.py`): a call asked
again reads nothing but the auth stamp, and every change a permission rests on — made through
the services or straight in the database by another process — is seen by the very next call."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select, text

from kaifang.access import grants as grants_module
from kaifang.access import service as access
from kaifang.access.models import Grant, Suspension, SuspensionStatus
from kaifang.accounts import service as accounts_service
from kaifang.accounts.models import AuthStamp
from kaifang.app import Platform
from kaifang.catalog.models import Entry
from tests.access.conftest import Scene


def data(client: TestClient, scene: Scene, who: str) -> int:
    url = f"/api/v1/resources/{scene.resource_id}/data"
    return client.get(url, params={"limit": "1"}, headers=scene.headers(who)).status_code


def stamp(platform: Platform) -> int:
    with platform.db.session() as db:
        return db.scalar(select(AuthStamp.n).where(AuthStamp.id == 1)) or 0


def sql(platform: Platform, statement: str, **params: Any) -> None:
    """A change committed by someone else: another process, the shell, a DBA."""
    with platform.db.engine.begin() as conn:
        conn.execute(text(statement), params)


@contextmanager
def statements(platform: Platform) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(platform.db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", count)


def test_a_call_asked_again_reads_only_the_stamp(client: TestClient, scene: Scene) -> None:
    scene.granted()
    assert data(client, scene, "applicant") == 200
    with statements(scene.platform) as seen:
        assert data(client, scene, "applicant") == 200
    assert len(seen) == 1 and "auth_stamp" in seen[0], seen


def grant_id(platform: Platform) -> int:
    with platform.db.session() as db:
        return db.scalars(select(Grant.id)).one()


def revoke_by_service(scene: Scene) -> None:
    scene.call("reviewer", access.revoke_grant, grant_id(scene.platform), "使用者违反协议约定用途")


def revoke_in_database(scene: Scene) -> None:
    sql(scene.platform, "UPDATE access_grants SET revoked_at = CURRENT_TIMESTAMP")


def suspend(scene: Scene) -> None:
    with scene.platform.db.session() as db:
        db.add(
            Suspension(
                user_id=scene.users["applicant"].id,
                provider_id=db.get_one(Entry, scene.entry_id).provider_id,
                status=SuspensionStatus.active,
                reason="违反协议",
                evidence="日志",
                proposed_by=scene.users["reviewer"].id,
            )
        )


def deactivate(scene: Scene) -> None:
    sql(
        scene.platform,
        "UPDATE users SET is_active = :no WHERE id = :id",
        no=False,
        id=scene.users["applicant"].id,
    )


def revoke_key(scene: Scene) -> None:
    sql(scene.platform, "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP")


def close_entry(scene: Scene) -> None:
    sql(scene.platform, "UPDATE entries SET open_type = 'closed' WHERE id = :id", id=scene.entry_id)


def withdraw_entry(scene: Scene) -> None:
    sql(scene.platform, "UPDATE entries SET status = 'retired' WHERE id = :id", id=scene.entry_id)


def drop_version(scene: Scene) -> None:
    sql(scene.platform, "UPDATE resource_versions SET status = 'discarded'")


CHANGES: dict[str, tuple[Callable[[Scene], None], set[int]]] = {
    "grant revoked by the provider": (revoke_by_service, {403}),
    "grant revoked in the database": (revoke_in_database, {403}),
    "user suspended": (suspend, {403}),
    "account deactivated": (deactivate, {401}),
    "API key revoked in the database": (revoke_key, {401}),
    "entry made 不予开放": (close_entry, {404}),
    "entry withdrawn": (withdraw_entry, {403, 404}),
    "version no longer published": (drop_version, {404}),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_the_next_call_sees_a_change(client: TestClient, scene: Scene, change: str) -> None:
    scene.granted()
    assert data(client, scene, "applicant") == data(client, scene, "applicant") == 200  # kept
    make, refused = CHANGES[change]
    make(scene)
    assert data(client, scene, "applicant") in refused


def test_a_grant_ends_at_midnight_for_a_kept_caller(
    client: TestClient, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene.granted()
    assert data(client, scene, "applicant") == 200
    with scene.platform.db.session() as db:
        ends_on = db.scalars(select(Grant.ends_on)).one()

    def today_is(day: date) -> None:
        for module in (grants_module, accounts_service):
            monkeypatch.setattr(module, "city_today", lambda: day)

    # Nothing is written at midnight: the day the facts were read on is part of what was kept.
    today_is(ends_on)
    assert data(client, scene, "applicant") == 403
    today_is(ends_on - timedelta(days=1))
    assert data(client, scene, "applicant") == 200


def test_staff_removed_from_the_provider_lose_its_conditional_data(client: TestClient, scene: Scene) -> None:
    assert data(client, scene, "publisher") == data(client, scene, "publisher") == 200
    sql(scene.platform, "DELETE FROM memberships WHERE user_id = :id", id=scene.users["publisher"].id)
    assert data(client, scene, "publisher") == 403


WATCHED = [
    "UPDATE api_keys SET revoked_at = NULL",
    "UPDATE users SET display_name = '改名'",
    "UPDATE entries SET open_type = open_type",
    "UPDATE resource_versions SET status = status",
    "UPDATE resources SET kind = kind",
]
UNWATCHED = [
    "UPDATE api_keys SET last_used_at = CURRENT_TIMESTAMP",
    "UPDATE users SET last_login_at = CURRENT_TIMESTAMP",
    "UPDATE entries SET title = '新标题'",
    "UPDATE resource_versions SET progress = 50",
]


@pytest.mark.parametrize("statement", WATCHED + UNWATCHED)
def test_the_stamp_moves_with_permission_columns_only(scene: Scene, statement: str) -> None:
    scene.key("applicant")  # an API key row to update
    before = stamp(scene.platform)
    sql(scene.platform, statement)
    assert (stamp(scene.platform) > before) == (statement in WATCHED)


def test_a_rolled_back_change_leaves_the_stamp(scene: Scene) -> None:
    before = stamp(scene.platform)
    with scene.platform.db.engine.connect() as conn:
        conn.execute(text("UPDATE entries SET open_type = 'closed'"))
        conn.rollback()
    assert stamp(scene.platform) == before


def test_kept_facts_expire_after_a_minute_whatever_the_stamp(
    client: TestClient, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound on a column the triggers should watch and do not."""
    from kaifang.accounts import stamp as stamp_module

    scene.granted()
    assert data(client, scene, "applicant") == 200
    clock = [stamp_module.time.monotonic() + stamp_module.TTL_S + 1]
    monkeypatch.setattr(stamp_module.time, "monotonic", lambda: clock[0])
    with statements(scene.platform) as seen:
        assert data(client, scene, "applicant") == 200
    assert len(seen) > 1  # looked up again


def test_a_restored_database_is_not_mistaken_for_the_one_the_facts_came_from(
    client: TestClient, scene: Scene
) -> None:
    """A backup restored brings the stamp back to a value facts may have been kept under while the
    rows say otherwise: a process that sees the stamp lower than before forgets everything."""
    scene.granted()
    assert data(client, scene, "applicant") == 200  # the applicant's key kept under the stamp S
    restored_to = stamp(scene.platform)
    sql(scene.platform, "UPDATE users SET display_name = '新名字' WHERE id = :id", id=scene.users["user"].id)
    assert client.get("/api/v1/me", headers=scene.headers("user")).status_code == 200  # sees S + 1
    revoke_in_database(scene)  # then the backup of another history is restored: stamp S again
    sql(scene.platform, "UPDATE auth_stamp SET n = :n", n=restored_to)
    assert data(client, scene, "applicant") == 403
