"""The confirmation workflow through the JSON API: allowed and forbidden transitions, reasons,
completeness, re-confirmation of changes to published entries, audit records, and 不予开放 privacy."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from kaifang.audit.models import AuditRecord
from kaifang.audit.tags import Tag
from kaifang.catalog.models import Entry
from tests.conftest import CJK, Cast, assert_error, complete_fields

API = "/api/v1/datasets"


def _act(client, cast: Cast, role: str, entry_id: int, action: str, comment: str | None = None) -> Any:
    body = {} if comment is None else {"comment": comment}
    return client.post(f"{API}/{entry_id}/{action}", json=body, headers=cast.headers(role))


def _ok(response: Any, status: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _audit(db, entry_id: int) -> list[AuditRecord]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditRecord)
            .where(AuditRecord.target_type == "entry", AuditRecord.target_id == str(entry_id))
            .order_by(AuditRecord.id)
        )
    )


def _create(client, cast: Cast, **fields: Any) -> int:
    body = {"provider": "jtw", **complete_fields(**fields)}
    response = client.post(API, json=body, headers=cast.headers("publisher"))
    assert response.status_code == 201, response.text[:500]
    assert response.json()["status"] == "draft"
    return int(response.json()["id"])


def _public_titles(client, q: str, role: str = "anonymous", cast: Cast | None = None) -> list[str]:
    headers = cast.headers(role) if cast else {}
    body = client.get(API, params={"q": q}, headers=headers).json()
    return [r["title"] for r in body["results"]]


# --- allowed transitions -------------------------------------------------------------------------


def test_full_path_draft_to_retired_with_audit(client, cast: Cast, db) -> None:
    entry_id = _create(client, cast)
    _ok(_act(client, cast, "publisher", entry_id, "submit", "请确认"), "submitted")
    assert client.get(f"{API}/{entry_id}").status_code == 404  # not public before publishing
    _ok(_act(client, cast, "regulator", entry_id, "confirm", "符合要求"), "confirmed")
    body = _ok(_act(client, cast, "publisher", entry_id, "publish"), "published")
    assert body["published_at"] and body["last_published_at"]
    assert client.get(f"{API}/{entry_id}").json()["title"] == "海河市公交线路及站点信息"
    _ok(_act(client, cast, "publisher", entry_id, "retire", "数据已由新目录替代"), "retired")
    assert client.get(f"{API}/{entry_id}").status_code == 404

    records = _audit(db, entry_id)
    assert [r.action for r in records] == [
        Tag.catalog_entry_created,
        Tag.catalog_entry_submitted,
        Tag.catalog_entry_confirmed,
        Tag.catalog_entry_published,
        Tag.catalog_entry_retired,
    ]
    publisher, regulator = cast.users["publisher"], cast.users["regulator"]
    assert [(r.actor_id, r.actor_name) for r in records] == [
        (publisher.id, "pub"),
        (publisher.id, "pub"),
        (regulator.id, "factory-regulator"),
        (publisher.id, "pub"),
        (publisher.id, "pub"),
    ]
    assert [r.comment for r in records] == ["", "请确认", "符合要求", "", "数据已由新目录替代"]
    assert all(r.api_key_id is not None for r in records)  # done with API keys, and recorded as such
    assert records[1].summary == {"before": {"status": "draft"}, "after": {"status": "submitted"}}


def test_returned_entry_is_fixed_and_resubmitted(client, cast: Cast, db) -> None:
    entry_id = cast.entry("submitted")
    body = _ok(_act(client, cast, "regulator", entry_id, "return", "联系电话格式有误，请核实"), "returned")
    mine = client.get(f"{API}/{entry_id}", headers=cast.headers("publisher")).json()
    assert mine["return_reason"] == "联系电话格式有误，请核实"
    assert body["return_reason"] == "联系电话格式有误，请核实"
    patched = client.patch(
        f"{API}/{entry_id}", json={"contact_phone": "022-23581026"}, headers=cast.headers("publisher")
    )
    assert patched.status_code == 200 and patched.json()["status"] == "returned"
    _ok(_act(client, cast, "publisher", entry_id, "submit"), "submitted")
    _ok(_act(client, cast, "regulator", entry_id, "confirm"), "confirmed")
    returned = [r for r in _audit(db, entry_id) if r.action == Tag.catalog_entry_returned]
    assert len(returned) == 1 and returned[0].comment == "联系电话格式有误，请核实"
    assert returned[0].actor_name == "factory-regulator"


def test_editing_a_confirmed_entry_sends_it_back_to_draft(client, cast: Cast) -> None:
    entry_id = cast.entry("confirmed")
    body = client.patch(
        f"{API}/{entry_id}", json={"summary": "新增换乘站信息。"}, headers=cast.headers("publisher")
    ).json()
    assert body["status"] == "draft" and body["summary"] == "新增换乘站信息。"
    assert_error(_act(client, cast, "publisher", entry_id, "publish"), 409, "conflict")
    _ok(_act(client, cast, "publisher", entry_id, "submit"), "submitted")


# --- forbidden transitions -----------------------------------------------------------------------

FORBIDDEN = [
    ("draft", "publisher", "publish", None),
    ("draft", "regulator", "confirm", None),
    ("draft", "regulator", "return", "理由说明"),
    ("draft", "publisher", "retire", "理由说明"),
    ("submitted", "publisher", "edit", None),
    ("submitted", "publisher", "submit", None),
    ("submitted", "publisher", "publish", None),
    ("submitted", "publisher", "retire", "理由说明"),
    ("returned", "regulator", "confirm", None),
    ("returned", "publisher", "publish", None),
    ("confirmed", "publisher", "submit", None),
    ("confirmed", "regulator", "confirm", None),
    ("confirmed", "regulator", "return", "理由说明"),
    ("published", "publisher", "submit", None),
    ("published", "publisher", "publish", None),
    ("published", "regulator", "confirm", None),
    ("published", "regulator", "return", "理由说明"),
    ("retired", "publisher", "edit", None),
    ("retired", "publisher", "submit", None),
    ("retired", "publisher", "publish", None),
    ("retired", "publisher", "retire", "理由说明"),
    ("retired", "regulator", "confirm", None),
]


@pytest.mark.parametrize(
    ("state", "role", "action", "comment"), FORBIDDEN, ids=[f"{a}-{s}" for s, _, a, _ in FORBIDDEN]
)
def test_forbidden_transition_is_409_and_changes_nothing(
    client, cast: Cast, db, state: str, role: str, action: str, comment: str | None
) -> None:
    entry_id = cast.entry(state)
    headers = cast.headers(role)
    before = len(_audit(db, entry_id))
    if action == "edit":
        response = client.patch(f"{API}/{entry_id}", json={"title": "改名"}, headers=headers)
    else:
        body = {} if comment is None else {"comment": comment}
        response = client.post(f"{API}/{entry_id}/{action}", json=body, headers=headers)
    assert_error(response, 409, "conflict")
    assert len(_audit(db, entry_id)) == before  # a failed transition records nothing
    entry = db.get(Entry, entry_id)
    assert entry.status == state and entry.pending is None
    assert entry.title == "海河市公交线路及站点信息"


@pytest.mark.parametrize("action", ["return", "retire"])
@pytest.mark.parametrize("comment", [None, "", "   ", "无"])
def test_return_and_retire_need_a_reason(client, cast: Cast, db, action: str, comment: str | None) -> None:
    entry_id = cast.entry("submitted" if action == "return" else "published")
    role = "regulator" if action == "return" else "publisher"
    response = _act(client, cast, role, entry_id, action, comment)
    assert_error(response, 422, "invalid")
    assert db.get(Entry, entry_id).status == ("submitted" if action == "return" else "published")


def test_return_without_a_body_is_422(client, cast: Cast) -> None:
    entry_id = cast.entry("submitted")
    response = client.post(
        f"{API}/{entry_id}/return", headers={**cast.headers("regulator"), "Content-Type": "application/json"}
    )
    assert_error(response, 422)


# --- completeness before submission --------------------------------------------------------------


def test_incomplete_entry_cannot_be_submitted(client, cast: Cast, db) -> None:
    response = client.post(
        API, json={"title": "只有名称的目录", "provider": "jtw"}, headers=cast.headers("publisher")
    )
    entry_id = response.json()["id"]
    error = assert_error(_act(client, cast, "publisher", entry_id, "submit"), 422, "invalid")
    missing = {
        "summary",
        "keywords",
        "theme",
        "industry",
        "grade",
        "update_frequency",
        "contact_name",
        "contact_phone",
        "access_methods",
        "formats",
    }
    assert missing <= set(error["fields"])
    assert "title" not in error["fields"]
    assert all(CJK.search(message) for message in error["fields"].values())
    assert db.get(Entry, entry_id).status == "draft"
    assert [r.action for r in _audit(db, entry_id)] == [Tag.catalog_entry_created]


@pytest.mark.parametrize("missing", ["closed_reason", "closed_legal_basis", "next_review_date"])
def test_closed_entry_needs_reason_legal_basis_and_review_date(client, cast: Cast, missing: str) -> None:
    entry_id = _create(client, cast, open_type="closed", **{missing: None})
    error = assert_error(_act(client, cast, "publisher", entry_id, "submit"), 422)
    assert set(error["fields"]) == {missing}


def test_closed_entry_review_date_must_be_in_the_future(client, cast: Cast) -> None:
    entry_id = _create(client, cast, open_type="closed", next_review_date="2020-01-01")
    error = assert_error(_act(client, cast, "publisher", entry_id, "submit"), 422)
    assert set(error["fields"]) == {"next_review_date"}


def test_complete_closed_entry_can_be_submitted(client, cast: Cast) -> None:
    entry_id = _create(client, cast, open_type="closed")
    _ok(_act(client, cast, "publisher", entry_id, "submit"), "submitted")


def test_conditional_entry_needs_open_conditions(client, cast: Cast) -> None:
    entry_id = _create(client, cast, open_type="conditional", open_conditions="")
    error = assert_error(_act(client, cast, "publisher", entry_id, "submit"), 422)
    assert set(error["fields"]) == {"open_conditions"}
    client.patch(
        f"{API}/{entry_id}", json={"open_conditions": "仅限科研用途"}, headers=cast.headers("publisher")
    )
    _ok(_act(client, cast, "publisher", entry_id, "submit"), "submitted")


def test_change_to_published_entry_must_be_complete(client, cast: Cast) -> None:
    entry_id = cast.entry("published")
    client.patch(
        f"{API}/{entry_id}",
        json={"open_type": "conditional", "open_conditions": ""},
        headers=cast.headers("publisher"),
    )
    error = assert_error(_act(client, cast, "publisher", entry_id, "submit"), 422)
    assert set(error["fields"]) == {"open_conditions"}


# --- re-confirmation of changes to published entries ---------------------------------------------

OLD = {"title": "海河市公交线路信息", "summary": "线路走向与站点。", "keywords": ["线路"]}


def test_change_to_published_entry_goes_through_confirmation(client, cast: Cast, db) -> None:
    entry_id = cast.entry("published", **OLD)
    pub = cast.headers("publisher")
    published_at = client.get(f"{API}/{entry_id}").json()["published_at"]

    body = client.patch(f"{API}/{entry_id}", json={"title": "海河市轨道交通线路信息"}, headers=pub).json()
    assert body["status"] == "published" and body["title"] == OLD["title"]
    assert body["pending"] == {"title": "海河市轨道交通线路信息"} and body["pending_status"] == "draft"
    assert client.get(f"{API}/{entry_id}").json()["title"] == OLD["title"]
    assert client.get(f"{API}/{entry_id}").json()["pending"] is None  # the public never sees the change
    assert _public_titles(client, "公交") == [OLD["title"]]
    assert _public_titles(client, "轨道交通") == []

    body = _ok(_act(client, cast, "publisher", entry_id, "submit"), "published")
    assert body["pending_status"] == "submitted"
    assert_error(client.patch(f"{API}/{entry_id}", json={"summary": "再改"}, headers=pub), 409)
    assert _public_titles(client, "轨道交通", "regulator", cast) == []  # not live even for the regulator
    body = _ok(_act(client, cast, "regulator", entry_id, "confirm"), "published")
    assert body["pending_status"] == "confirmed"
    assert client.get(f"{API}/{entry_id}").json()["title"] == OLD["title"]

    body = _ok(_act(client, cast, "publisher", entry_id, "publish"), "published")
    assert body["title"] == "海河市轨道交通线路信息"
    assert body["pending"] is None and body["pending_status"] is None
    public = client.get(f"{API}/{entry_id}").json()
    assert public["title"] == "海河市轨道交通线路信息"
    assert public["published_at"] == published_at  # first publication date kept
    assert public["last_published_at"] > published_at
    assert _public_titles(client, "轨道交通") == ["海河市轨道交通线路信息"]
    assert _public_titles(client, "公交") == []

    actions = [r.action for r in _audit(db, entry_id)][-5:]
    assert actions == [
        Tag.catalog_entry_edited,
        Tag.catalog_entry_submitted,
        Tag.catalog_entry_confirmed,
        Tag.catalog_entry_published,
        Tag.catalog_entry_edited,
    ]


def test_returned_change_keeps_the_live_version(client, cast: Cast) -> None:
    entry_id = cast.entry("published", **OLD)
    pub = cast.headers("publisher")
    client.patch(f"{API}/{entry_id}", json={"title": "海河市轨道交通线路信息"}, headers=pub)
    _act(client, cast, "publisher", entry_id, "submit")
    body = _ok(_act(client, cast, "regulator", entry_id, "return", "名称与内容不符"), "published")
    assert body["pending_status"] == "returned" and body["return_reason"] == "名称与内容不符"
    assert client.get(f"{API}/{entry_id}").json()["title"] == OLD["title"]
    assert _public_titles(client, "公交") == [OLD["title"]]
    assert_error(_act(client, cast, "publisher", entry_id, "publish"), 409)
    # the provider fixes the change and sends it again
    client.patch(f"{API}/{entry_id}", json={"title": "海河市公交及轨道交通线路信息"}, headers=pub)
    body = _ok(_act(client, cast, "publisher", entry_id, "submit"), "published")
    assert body["pending_status"] == "submitted"


def test_retiring_drops_a_pending_change(client, cast: Cast) -> None:
    entry_id = cast.entry("published", **OLD)
    client.patch(f"{API}/{entry_id}", json={"title": "新名称"}, headers=cast.headers("publisher"))
    body = _ok(_act(client, cast, "publisher", entry_id, "retire", "停止维护"), "retired")
    assert body["pending"] is None and body["title"] == OLD["title"]


def test_edit_without_change_leaves_no_pending(client, cast: Cast) -> None:
    entry_id = cast.entry("published", **OLD)
    body = client.patch(
        f"{API}/{entry_id}", json={"title": OLD["title"]}, headers=cast.headers("publisher")
    ).json()
    assert not body["pending"] and body["pending_status"] is None
    assert_error(_act(client, cast, "publisher", entry_id, "submit"), 409)


# --- audit in the same transaction ---------------------------------------------------------------


def test_refused_and_invalid_requests_write_no_audit(client, cast: Cast, db) -> None:
    entry_id = cast.entry("submitted")
    for role in ("user", "regulator", "publisher"):
        cast.headers(role)
    before = db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "change"))
    _act(client, cast, "user", entry_id, "confirm")
    _act(client, cast, "regulator", entry_id, "return", "")
    _act(client, cast, "regulator", entry_id, "publish")
    client.patch(f"{API}/{entry_id}", json={"theme": "no-such-theme"}, headers=cast.headers("publisher"))
    db.expire_all()
    assert (
        db.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "change")) == before
    )


# --- 不予开放 never reaches the public -------------------------------------------------------------


def _closed_catalog(cast: Cast) -> tuple[int, int]:
    open_id = cast.entry("published", title="海河市公交线路及站点信息")
    closed_id = cast.entry(
        "published",
        open_type="closed",
        title="海河市公交卡乘客刷卡记录",
        keywords=["公交", "刷卡"],
        summary="公交卡乘客刷卡明细，含个人信息。",
    )
    return open_id, closed_id


def _facet_total(body: dict[str, Any], facet: str) -> int:
    return sum(v["count"] for v in body["facets"][facet])


@pytest.mark.parametrize("q", ["", "公交", "刷卡", "公交 刷卡"])
def test_closed_entry_hidden_from_public_search_and_facets(client, cast: Cast, q: str) -> None:
    _open_id, closed_id = _closed_catalog(cast)
    for role in ("anonymous", "user", "other_publisher"):
        body = client.get(API, params={"q": q}, headers=cast.headers(role)).json()
        assert closed_id not in [r["id"] for r in body["results"]]
        assert _facet_total(body, "open_type") == body["count"]
        assert "closed" not in {v["value"] for v in body["facets"]["open_type"] if v["count"]}
        assert _facet_total(body, "provider") == body["count"]
        assert body["count"] == len(body["results"])
        text = str(body)
        assert "刷卡" not in text and "个人信息保护法" not in text
        filtered = client.get(API, params={"q": q, "open_type": "closed"}, headers=cast.headers(role)).json()
        assert filtered["count"] == 0 and filtered["results"] == []


def test_closed_entry_visible_in_search_to_regulator_and_its_provider(client, cast: Cast) -> None:
    open_id, closed_id = _closed_catalog(cast)
    for role in ("regulator", "operator", "publisher", "reviewer"):
        body = client.get(API, params={"q": "公交"}, headers=cast.headers(role)).json()
        assert {r["id"] for r in body["results"]} == {open_id, closed_id}, role
        counts = {v["value"]: v["count"] for v in body["facets"]["open_type"]}
        assert counts == {"unconditional": 1, "closed": 1}
        assert _facet_total(body, "open_type") == body["count"] == 2


def test_closed_entry_not_readable_by_id(client, cast: Cast) -> None:
    _open_id, closed_id = _closed_catalog(cast)
    for role in ("anonymous", "user", "other_publisher"):
        assert_error(client.get(f"{API}/{closed_id}", headers=cast.headers(role)), 404, "not_found")
    absent = client.get(f"{API}/999999").json()
    assert client.get(f"{API}/{closed_id}").json() == absent  # indistinguishable from a missing id
    staff = client.get(f"{API}/{closed_id}", headers=cast.headers("reviewer")).json()
    assert staff["closed_reason"] == "涉及个人隐私"
    assert staff["closed_legal_basis"] and staff["next_review_date"] == "2099-12-31"
    page = client.get(f"/datasets/{closed_id}")
    assert page.status_code == 404
    assert "刷卡" not in page.text


def test_closed_entry_absent_from_public_pages(client, cast: Cast) -> None:
    _closed_catalog(cast)
    for url in ("/", "/datasets", "/datasets?q=公交", "/datasets?q=刷卡", "/datasets?open_type=closed"):
        response = client.get(url)
        if response.status_code == 404:
            continue  # the page is built by another change
        assert response.status_code == 200
        assert "乘客刷卡记录" not in response.text, url
        assert "刷卡明细" not in response.text, url


def test_public_output_of_open_entry_hides_internal_fields(client, cast: Cast) -> None:
    entry_id = cast.entry("published")
    client.patch(f"{API}/{entry_id}", json={"title": "尚未确认的新名称"}, headers=cast.headers("publisher"))
    for role in ("anonymous", "user", "other_publisher"):
        body = client.get(f"{API}/{entry_id}", headers=cast.headers(role)).json()
        assert body["pending"] is None and body["pending_status"] is None
        assert body["return_reason"] is None
        assert "尚未确认的新名称" not in str(client.get(API, headers=cast.headers(role)).json())
