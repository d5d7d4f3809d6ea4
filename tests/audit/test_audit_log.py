"""Every request is recorded, the records are chained and signed, and any tampering is named."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from starlette.routing import Route

from kaifang.accounts.permissions import SYSTEM
from kaifang.app import Platform
from kaifang.audit import chain
from kaifang.audit.inspection import verify_chain
from kaifang.audit.middleware import recorded
from kaifang.audit.models import AuditCheckpoint, AuditRecord, AuditSeal
from kaifang.cli import main
from kaifang.db import is_sqlite
from tests.conftest import PASSWORD, Factory, csrf_token, login


def _requests(platform: Platform) -> list[AuditRecord]:
    platform.audit.flush()
    with platform.db.session() as db:
        rows = list(
            db.scalars(select(AuditRecord).where(AuditRecord.kind == "request").order_by(AuditRecord.id))
        )
        db.expunge_all()
    return rows


def test_a_page_view_is_recorded_with_who_where_and_how_much(client: TestClient, platform: Platform) -> None:
    response = client.get("/datasets?q=公交&page=1", headers={"User-Agent": "KaifangTest/1.0"})
    assert response.status_code == 200
    [row] = [r for r in _requests(platform) if r.path == "/datasets"]
    assert row.method == "GET" and row.route == "/datasets" and row.status == 200
    assert row.bytes_sent == len(response.content)
    assert row.actor_name == "anonymous" and row.actor_id is None and row.ip == "testclient"
    assert row.user_agent == "KaifangTest/1.0" and row.duration_ms is not None
    assert "q=" not in row.path  # query strings may carry tokens: never recorded


def test_an_api_call_names_the_user_and_the_key(
    client: TestClient, factory: Factory, platform: Platform
) -> None:
    user = factory.user("caller")
    key = factory.api_key(user)
    assert client.get("/api/v1/datasets", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/api/v1/datasets/999999").status_code == 404
    rows = _requests(platform)
    called = next(r for r in rows if r.path == "/api/v1/datasets")
    assert called.actor_id == user.id and called.actor_name == "caller" and called.api_key_id is not None
    missing = next(r for r in rows if r.path == "/api/v1/datasets/999999")
    assert missing.status == 404 and missing.route == "/api/v1/datasets/{entry_id}"


def _pattern(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "[^/]+", template)


def _sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _flatten(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        yield from _flatten(included.routes) if included is not None else [route]


def _routes(app: Any) -> Iterator[tuple[str, str]]:
    for route in _flatten(app.routes):
        if isinstance(route, APIRoute | Route) and recorded(route.path):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path


def test_every_route_is_recorded(client: TestClient, platform: Platform) -> None:
    """Enumerates the app's routes, so a new route that escapes auditing fails here."""
    routes = list(_routes(client.app))
    assert len(routes) > 60
    token = csrf_token(client)
    for method, path in routes:
        unsafe = method != "GET"
        client.request(
            method,
            _sample_path(path),
            data={"csrf_token": token} if unsafe else None,
            headers={"X-CSRF-Token": token} if unsafe else None,
        )
    seen = [(r.method, r.path) for r in _requests(platform)]
    missing = [
        f"{m} {p}"
        for m, p in routes
        if not any(method == m and re.fullmatch(_pattern(p), path) for method, path in seen)
    ]
    assert not missing, f"routes without an audit record: {missing}"


def test_secrets_never_reach_the_audit_log(client: TestClient, factory: Factory, platform: Platform) -> None:
    factory.user("secretive")
    login(client, "secretive")
    session_cookie = client.cookies.get("kf_session")
    token = csrf_token(client)
    created = client.post("/account/api-keys", data={"name": "脚本", "csrf_token": token})
    plain_key = re.search(r"kf_[A-Za-z0-9_\-]{20,}", created.text)
    assert plain_key is not None
    client.get("/api/v1/datasets", headers={"Authorization": f"Bearer {plain_key.group(0)}"})
    client.post(
        "/account/password", data={"current_password": PASSWORD, "new_password": "x", "csrf_token": token}
    )
    client.post("/forgot-password", data={"email": "secretive@example.com", "csrf_token": token})
    platform.audit.flush()
    with platform.db.session() as db:
        dump = "\n".join(
            repr({c: getattr(r, c) for c in chain.CONTENT}) for r in db.scalars(select(AuditRecord))
        )
    for secret in (PASSWORD, plain_key.group(0), session_cookie, token):
        assert secret and secret not in dump


def test_a_clean_shutdown_writes_every_buffered_record(platform: Platform) -> None:
    writer = platform.audit
    for n in range(250):
        writer.add(
            {**_request_values(), "path": f"/burst/{n}"},
        )
    writer.stop()
    with platform.db.session() as db:
        paths = set(db.scalars(select(AuditRecord.path).where(AuditRecord.path.like("/burst/%"))))
    assert len(paths) == 250


def _request_values() -> dict[str, Any]:
    from kaifang.audit.middleware import _values

    scope = {"method": "GET", "path": "/x", "headers": [], "client": ("127.0.0.1", 1)}
    return _values(scope, chain.utcnow(), 200, 10, 0.01)


# --- the chain ---------------------------------------------------------------------------------------


@pytest.fixture
def chained(client: TestClient, factory: Factory, platform: Platform) -> list[int]:
    """Some changes and requests, sealed, with a checkpoint at the head; returns the record ids."""
    factory.user("someone")
    login(client, "someone")
    for path in ("/", "/datasets", "/providers", "/help"):
        client.get(path)
    platform.audit.flush()
    with platform.db.session() as db:
        chain.seal(db)
        chain.checkpoint(db, platform.audit.key, every=chain.timedelta(0))
    with platform.db.session() as db:
        return list(db.scalars(select(AuditSeal.record_id).order_by(AuditSeal.seq)))


def _verify(platform: Platform) -> chain.Verification:
    with platform.db.session() as db:
        return verify_chain(db, SYSTEM, platform.audit.key)


def _tamper(platform: Platform, *statements: Any) -> None:
    """What a database superuser could do: on PostgreSQL only with the triggers switched off."""
    with platform.db.session() as db:
        if not is_sqlite(db):
            db.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            db.execute(statement)


def test_an_untouched_chain_verifies(platform: Platform, chained: list[int]) -> None:
    result = _verify(platform)
    assert result.ok, result.problem
    assert result.records == len(chained) >= 6 and result.checkpoints == 1


def test_an_edited_record_is_named(platform: Platform, chained: list[int]) -> None:
    victim = chained[3]
    _tamper(platform, update(AuditRecord).where(AuditRecord.id == victim).values(ip="10.0.0.1"))
    result = _verify(platform)
    assert not result.ok and result.record_id == victim and "改动" in result.problem


def test_a_deleted_record_is_named(platform: Platform, chained: list[int]) -> None:
    victim = chained[2]
    _tamper(platform, delete(AuditRecord).where(AuditRecord.id == victim))
    result = _verify(platform)
    assert not result.ok and result.record_id == victim and "删除" in result.problem


def test_swapped_records_are_named(platform: Platform, chained: list[int]) -> None:
    first, second = chained[1], chained[4]
    with platform.db.session() as db:
        a, b = (db.get_one(AuditRecord, i) for i in (first, second))
        path_a, path_b = a.path, b.path
    _tamper(
        platform,
        update(AuditRecord).where(AuditRecord.id == first).values(path=path_b),
        update(AuditRecord).where(AuditRecord.id == second).values(path=path_a),
    )
    result = _verify(platform)
    assert not result.ok and result.record_id == first


def test_reordered_seals_are_found(platform: Platform, chained: list[int]) -> None:
    a, b = chained[1], chained[2]
    _tamper(
        platform,
        update(AuditSeal).where(AuditSeal.record_id == a).values(record_id=-1),
        update(AuditSeal).where(AuditSeal.record_id == b).values(record_id=a),
        update(AuditSeal).where(AuditSeal.record_id == -1).values(record_id=b),
    )
    result = _verify(platform)
    assert not result.ok and result.record_id == b  # the record now out of its place


def test_a_removed_seal_leaves_a_gap(platform: Platform, chained: list[int]) -> None:
    _tamper(platform, delete(AuditSeal).where(AuditSeal.seq == 3))
    result = _verify(platform)
    assert not result.ok and result.seq == 3


def test_cutting_off_the_end_contradicts_the_checkpoint(platform: Platform, chained: list[int]) -> None:
    tail = chained[-2:]
    _tamper(
        platform,
        delete(AuditSeal).where(AuditSeal.record_id.in_(tail)),
        delete(AuditRecord).where(AuditRecord.id.in_(tail)),
    )
    result = _verify(platform)
    assert not result.ok and "末尾" in result.problem


def test_a_forged_checkpoint_is_refused(platform: Platform, chained: list[int]) -> None:
    _tamper(platform, update(AuditCheckpoint).values(signature="00" * 64))
    result = _verify(platform)
    assert not result.ok and "签名" in result.problem


def test_rewriting_the_chain_after_a_checkpoint_is_found(platform: Platform, chained: list[int]) -> None:
    """Edit a record and recompute every later seal: only the signed checkpoint can tell."""
    victim = chained[2]
    _tamper(platform, update(AuditRecord).where(AuditRecord.id == victim).values(comment="改过"))
    with platform.db.session() as db:
        seals = list(db.scalars(select(AuditSeal).order_by(AuditSeal.seq)))
        previous = chain.GENESIS
        rewritten = []
        for seal_row in seals:
            previous = chain.link(previous, db.get_one(AuditRecord, seal_row.record_id), seal_row.seq)
            rewritten.append((seal_row.seq, previous))
    _tamper(platform, *(update(AuditSeal).where(AuditSeal.seq == s).values(hash=h) for s, h in rewritten))
    result = _verify(platform)
    assert not result.ok and "检查点" in result.problem


def test_postgres_refuses_changes_to_audit_rows(platform: Platform, chained: list[int]) -> None:
    with platform.db.session() as db:
        if is_sqlite(db):
            pytest.skip("the append-only triggers are PostgreSQL's")
    for statement in (
        update(AuditRecord).values(comment="x"),
        delete(AuditRecord),
        delete(AuditSeal),
        update(AuditCheckpoint).values(hash="0" * 64),
    ):
        with pytest.raises(DBAPIError, match="append-only"), platform.db.session() as db:
            db.execute(statement)
    assert _verify(platform).ok


def test_the_verify_command_names_the_record(
    platform: Platform,
    chained: list[int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAIFANG_HOME", str(platform.settings.home))
    monkeypatch.setenv("KAIFANG_DATABASE_URL", platform.settings.database_url)
    monkeypatch.setenv("KAIFANG_MODE", "test")
    assert main(["audit", "verify"]) == 0
    assert "审计记录完整" in capsys.readouterr().out
    _tamper(platform, update(AuditRecord).where(AuditRecord.id == chained[0]).values(actor_name="nobody"))
    assert main(["audit", "verify"]) == 1
    assert f"审计记录 {chained[0]}" in capsys.readouterr().err
    with platform.db.session() as db:
        outcomes = list(
            db.scalars(select(AuditRecord.summary).where(AuditRecord.action == "audit:chain:verified"))
        )
    assert [o["ok"] for o in outcomes] == [True, False]
