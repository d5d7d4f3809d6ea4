"""The permission matrix: every role × every catalog action through the JSON API, and a check that
every service entry point refuses an anonymous caller unless it is meant to be public."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import func, select

from kaifang.access import holidays, reports, suspension
from kaifang.access import service as access
from kaifang.access import stats as access_stats
from kaifang.accounts import orgs
from kaifang.accounts import service as accounts
from kaifang.accounts.models import ApiKey, Membership, User
from kaifang.accounts.permissions import ANONYMOUS
from kaifang.audit import inspection
from kaifang.audit.models import AuditRecord
from kaifang.catalog import service as catalog
from kaifang.catalog import vocabulary
from kaifang.catalog.models import Entry
from kaifang.datastore import service as datastore
from kaifang.datastore.service import Upload
from kaifang.desensitize import service as desensitize
from kaifang.desensitize.service import ReviewInput, Vouched
from kaifang.errors import NotAuthenticated, NotFound, PermissionDenied
from kaifang.notify import service as notify
from tests.conftest import Cast, assert_error, complete_fields

# action: (entry status it acts on, HTTP method, path, JSON body, status on success)
ACTIONS: dict[str, tuple[str | None, str, str, Any, int]] = {
    "search": (None, "GET", "/api/v1/datasets", None, 200),
    "view_published": ("published", "GET", "/api/v1/datasets/{id}", None, 200),
    "view_draft": ("draft", "GET", "/api/v1/datasets/{id}", None, 200),
    "view_closed": ("published-closed", "GET", "/api/v1/datasets/{id}", None, 200),
    "create": (None, "POST", "/api/v1/datasets", {"title": "新建的目录", "provider": "jtw"}, 201),
    "edit": ("draft", "PATCH", "/api/v1/datasets/{id}", {"summary": "修改后的摘要"}, 200),
    "submit": ("draft", "POST", "/api/v1/datasets/{id}/submit", {}, 200),
    "confirm": ("submitted", "POST", "/api/v1/datasets/{id}/confirm", {}, 200),
    "return": ("submitted", "POST", "/api/v1/datasets/{id}/return", {"comment": "联系电话有误"}, 200),
    "publish": ("confirmed", "POST", "/api/v1/datasets/{id}/publish", {}, 200),
    "retire": ("published", "POST", "/api/v1/datasets/{id}/retire", {"comment": "数据已停止更新"}, 200),
}

ROLES = Cast.ROLES
OK = "ok"
# Expected answer per action, in the order of ROLES:
#   anonymous, user, publisher, reviewer, other_publisher, regulator, operator
# Hidden entries answer 404 (their existence is not disclosed); visible ones 403 for a wrong role.
MATRIX: dict[str, tuple[int | str, ...]] = {
    "search": (OK, OK, OK, OK, OK, OK, OK),
    "view_published": (OK, OK, OK, OK, OK, OK, OK),
    "view_draft": (404, 404, OK, OK, 404, OK, OK),
    "view_closed": (404, 404, OK, OK, 404, OK, OK),
    "create": (401, 403, OK, 403, 403, 403, 403),
    "edit": (401, 404, OK, 403, 404, 403, 403),
    "submit": (401, 404, OK, 403, 404, 403, 403),
    "confirm": (401, 403, 403, 403, 403, OK, 403),
    "return": (401, 403, 403, 403, 403, OK, 403),
    "publish": (401, 404, OK, 403, 404, 403, 403),
    "retire": (401, 403, OK, 403, 403, 403, 403),
}
# Status the entry is in after a successful action.
AFTER = {
    "submit": "submitted",
    "confirm": "confirmed",
    "return": "returned",
    "publish": "published",
    "retire": "retired",
    "create": "draft",
    "edit": "draft",
}

CASES = [(role, action, MATRIX[action][i]) for action in MATRIX for i, role in enumerate(ROLES)]


def _target(cast: Cast, state: str | None) -> int | None:
    if state is None:
        return None
    if state == "published-closed":
        return cast.entry("published", open_type="closed")
    return cast.entry(state)


@pytest.mark.parametrize(("role", "action", "expected"), CASES, ids=[f"{r}-{a}" for r, a, _ in CASES])
def test_permission_matrix(client, cast: Cast, db, role: str, action: str, expected: int | str) -> None:
    state, method, path, body, ok_status = ACTIONS[action]
    entry_id = _target(cast, state)
    url = path.format(id=entry_id)
    headers = cast.headers(role)
    audit_before = db.scalar(
        select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "change")
    )
    response = client.request(method, url, json=body, headers=headers)
    if expected == OK:
        assert response.status_code == ok_status, (response.status_code, response.text[:300])
        if action in AFTER:
            assert response.json()["status"] == AFTER[action]
            db.expire_all()
            assert (
                db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "change"))
                == audit_before + 1
            )
        return
    assert_error(response, int(expected))
    # A refused action changes nothing and records nothing.
    db.expire_all()
    assert (
        db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "change"))
        == audit_before
    )
    if entry_id is not None and method != "GET":
        assert db.get(Entry, entry_id).status == (state or "").removesuffix("-closed")


def test_hidden_entries_are_absent_from_search_for_outsiders(client, cast: Cast) -> None:
    """A draft and a published 不予开放 entry never appear in the public listing."""
    open_id = cast.entry("published")
    draft_id = cast.entry("draft", title="海河市公交线路草稿")
    closed_id = cast.entry("published", open_type="closed", title="海河市公交刷卡明细")
    for role, expected in [
        ("anonymous", {open_id}),
        ("user", {open_id}),
        ("other_publisher", {open_id}),
        ("publisher", {open_id, closed_id}),
        ("reviewer", {open_id, closed_id}),
        ("regulator", {open_id, closed_id}),
        ("operator", {open_id, closed_id}),
    ]:
        body = client.get("/api/v1/datasets", params={"q": "公交"}, headers=cast.headers(role)).json()
        ids = {r["id"] for r in body["results"]}
        assert ids == expected, role
        assert draft_id not in ids
        assert body["count"] == len(expected)


# --- every service entry point refuses the anonymous actor ---------------------------------------

# Public functions that take an actor but are meant to work for anyone.
PUBLIC_ALLOWLIST = {
    "kaifang.catalog.service.get_entry": "reading a published open entry is public",
    "kaifang.accounts.service.end_session": "logging out needs only the session token the caller holds",
    "kaifang.accounts.service.issue_api_key": "internal helper: create_api_key and the CLI check the caller",
    "kaifang.datastore.service.get_resource": "a resource of a published open entry is public",
    "kaifang.datastore.service.readable_version": "无条件开放 data is public (the access matrix: the rest)",
    "kaifang.datastore.service.entry_resources": "the published resources of a visible entry are public",
}
MODULES = (
    catalog,
    orgs,
    accounts,
    inspection,
    access,
    holidays,
    vocabulary,
    reports,
    suspension,
    access_stats,
    notify,
    desensitize,
    datastore,
)


def _entry_points(module: ModuleType) -> list[tuple[str, Callable[..., Any]]]:
    """Public functions of the module taking a session and an actor."""
    found = []
    for name, func_ in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("_") or func_.__module__ != module.__name__:
            continue
        params = list(inspect.signature(func_).parameters)
        if "db" in params and "actor" in params:
            found.append((f"{module.__name__}.{name}", func_))
    return found


ENTRY_POINTS = [ep for module in MODULES for ep in _entry_points(module)]


def _arguments(func_: Callable[..., Any], world: dict[str, Any]) -> dict[str, Any]:
    """Plausible arguments by parameter name, pointing at real rows; fails for an unknown parameter."""
    args = {}
    for name, param in inspect.signature(func_).parameters.items():
        if name in world:
            value = world[name]
            args[name] = value(func_) if callable(value) and name == "form" else value
        elif param.default is inspect.Parameter.empty:
            pytest.fail(f"{func_.__module__}.{func_.__name__}: add a test argument for parameter {name!r}")
    return args


def _form(func_: Callable[..., Any]) -> Any:
    annotation = str(inspect.signature(func_).parameters["form"].annotation)
    if "OrgForm" in annotation:
        return orgs.OrgForm(name="匿名创建的单位", slug="anon-org")
    if "StaffForm" in annotation:
        return orgs.StaffForm(responsible_office="办公室", staff=[{"name": "张三"}])
    if "UserForm" in annotation:
        return orgs.UserForm(
            username="anon-made",
            email="anon@example.com",
            display_name="匿名",
            password="Strong-Passw0rd-2026",
        )
    if "VocabularyForm" in annotation:
        return vocabulary.VocabularyForm(terms="匿名说法", expansions="公交")
    if "ApplicationForm" in annotation:
        return access.ApplicationForm(purpose="匿名申请的用途说明文字", period_days=30)
    if "ReportForm" in annotation:
        return reports.ReportForm(work="匿名填写的使用情况", results="匿名成果")
    if "CheckForm" in annotation:
        return reports.CheckForm(
            checked_on="2026-11-01", method="现场核查", finding="无", conclusion="compliant"
        )
    pytest.fail(f"{func_.__name__}: unknown form type {annotation}")


def test_entry_points_are_enumerated() -> None:
    names = {name.rsplit(".", 1)[1] for name, _ in ENTRY_POINTS}
    assert {
        "create_entry",
        "edit_entry",
        "confirm_entry",
        "add_member",
        "create_user",
        "revoke_api_key",
    } <= names


def test_every_entry_point_refuses_the_anonymous_actor(platform, cast: Cast) -> None:
    entry_id = cast.entry("published")
    cast.key("user")
    with platform.db.session() as db:
        membership_id = db.scalar(select(Membership.id).limit(1))
        key_id = db.scalar(select(ApiKey.id).limit(1)) or 0
        entry = db.get_one(Entry, entry_id)
        db.expunge(entry)
        audit_before = db.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "change")
        )
    world: dict[str, Any] = {
        "db": None,
        "actor": ANONYMOUS,
        "settings": platform.settings,
        "mailer": platform.mailer,
        "entry_id": entry_id,
        "provider_id": cast.org.id,
        "org_id": cast.org.id,
        "user_id": cast.users["publisher"].id,
        "membership_id": membership_id,
        "key_id": key_id,
        "data": complete_fields(title="匿名修改"),
        "comment": "匿名意见",
        "reason": "匿名理由",
        "basis": "匿名依据",
        "application_id": 1,
        "grant_id": 1,
        "sha256": "0" * 64,
        "holiday_id": 1,
        "vocabulary_id": 1,
        "day": "2027-02-10",
        "is_workday": False,
        "kind": "theme",
        "code": "anon",
        "name": "匿名",
        "username": "citizen",
        "role": "publisher",
        "active": False,
        "q": "",
        "old": "Test-password-2026",
        "new": "Other-password-2027",
        "form": _form,
        "key": platform.audit.key,
        "archive": platform.audit.archive,
        "store": platform.store,
        "number": 1,
        "resource_id": 1,
        "report_id": 1,
        "suspension_id": 1,
        "message_id": 1,
        "note": "匿名说明",
        "accepted": True,
        "evidence": "匿名证据",
        "entry": entry,
        "columns": [],
        "inputs": [],
        "upload": Upload("匿名.csv", "uploads/anonymous.csv", 1, "0" * 64),
        "review": ReviewInput(confidentiality="passed", risk_assessment="passed"),
        "vouched": Vouched(notes="匿名担保"),
    }
    unguarded = []
    for qualname, func_ in ENTRY_POINTS:
        if qualname in PUBLIC_ALLOWLIST:
            continue
        session = platform.db.sessionmaker()
        try:
            func_(**{**_arguments(func_, world), "db": session})
        except (NotAuthenticated, PermissionDenied, NotFound):
            pass
        else:
            unguarded.append(qualname)
        finally:
            session.rollback()
            session.close()
    assert not unguarded, f"callable without login: {unguarded}"
    with platform.db.session() as db:
        assert (
            db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "change"))
            == audit_before
        )
        assert db.scalar(select(func.count()).select_from(User)) == len(cast.users)


def test_allowlisted_get_entry_is_public_only_for_published_open_entries(platform, cast: Cast) -> None:
    published = cast.entry("published")
    hidden = [
        cast.entry("draft"),
        cast.entry("submitted"),
        cast.entry("confirmed"),
        cast.entry("retired"),
        cast.entry("published", open_type="closed"),
    ]
    with platform.db.session() as db:
        assert catalog.get_entry(db, ANONYMOUS, published).id == published
        for entry_id in hidden:
            with pytest.raises(NotFound):
                catalog.get_entry(db, ANONYMOUS, entry_id)
