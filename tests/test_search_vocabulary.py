"""The search vocabulary: the shipped default, and the admin page (/admin/vocabulary) on which the
regulator and the operator extend it — permission, validation, audit, immediate effect on search."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaifang.audit.models import AuditRecord
from kaifang.catalog import analysis
from kaifang.catalog.defaults import THEMES
from kaifang.catalog.models import VocabularyEntry
from kaifang.catalog.vocabulary import default_groups, ensure_default_vocabulary, parse
from tests.conftest import Cast, Factory, csrf_token, login
from tests.search_catalog import EverydayCatalog

PAGE = "/admin/vocabulary"


def post(client: TestClient, data: dict[str, Any]) -> Any:
    return client.post(PAGE, data={**data, "csrf_token": csrf_token(client)}, follow_redirects=False)


def search(client: TestClient, q: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/datasets", params={"q": q}).json()
    return body


def changes(db: Session, action: str) -> list[AuditRecord]:
    db.expire_all()
    return list(db.scalars(select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.id)))


# --- the shipped default ------------------------------------------------------------------------


def test_default_vocabulary_covers_every_theme_substantially() -> None:
    groups = default_groups()
    themes = {code for code, _name, _description in THEMES}
    per_theme = {code: sum(1 for g in groups if g.theme == code) for code in themes}
    assert {g.theme for g in groups} == themes
    assert min(per_theme.values()) >= 4, per_theme
    assert len(groups) >= 250
    assert sum(len(g.terms) * len(g.expansions) for g in groups) >= 1000  # everyday → catalog pairs
    for group in groups:
        assert group.terms and group.expansions
        assert all(len(t) <= 20 for t in (*group.terms, *group.expansions)), group


def test_default_vocabulary_is_written_in_simplified_characters() -> None:
    for group in default_groups():
        for word in (*group.terms, *group.expansions):
            assert analysis.normalise(word) == word.casefold(), word


def test_vocabulary_file_format() -> None:
    groups = parse("# 注释\n[jtys]\n坐公交 巴士 = 公交 公共交通  # 行尾注释\n\n[]\n天气=天气预报\n")
    assert [(g.terms, g.expansions, g.theme) for g in groups] == [
        (("坐公交", "巴士"), ("公交", "公共交通"), "jtys"),
        (("天气",), ("天气预报",), ""),
    ]
    with pytest.raises(ValueError, match="line 2"):
        parse("[jtys]\n只有日常说法\n")


def test_default_vocabulary_is_loaded_once(db: Session) -> None:
    count = db.scalar(select(func.count()).select_from(VocabularyEntry))
    assert count == len(default_groups())  # loaded with the default taxonomies
    assert ensure_default_vocabulary(db) == 0
    assert db.scalar(select(func.count()).select_from(VocabularyEntry)) == count


# --- who may use the page -----------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client: TestClient) -> None:
    response = client.get(PAGE, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


@pytest.mark.parametrize("role", ["user", "publisher", "reviewer"])
def test_citizens_and_provider_staff_may_not_see_or_change_it(
    client: TestClient, cast: Cast, db: Session, role: str
) -> None:
    login(client, cast.users[role].username)
    assert client.get(PAGE).status_code == 403
    before = db.scalar(select(func.count()).select_from(VocabularyEntry))
    response = post(client, {"terms": "火星车", "expansions": "公交"})
    assert response.status_code == 403
    assert db.scalar(select(func.count()).select_from(VocabularyEntry)) == before
    assert changes(db, "catalog:vocabulary:created") == []


@pytest.mark.parametrize("role", ["regulator", "operator"])
def test_supervisors_see_the_vocabulary(client: TestClient, cast: Cast, role: str) -> None:
    login(client, cast.users[role].username)
    response = client.get(PAGE)
    assert response.status_code == 200
    assert "检索词表" in response.text and "办护照" in response.text and "出入境" in response.text
    assert 'href="/admin/vocabulary" aria-current="page"' in response.text  # its tab in the admin area
    found = client.get(PAGE, params={"q": "驾照"})
    assert "拿驾照" in found.text and "港澳通行证" not in found.text
    by_theme = client.get(PAGE, params={"theme": "qxfw"})
    assert "天气预报" in by_theme.text and "拿驾照" not in by_theme.text


# --- changing it --------------------------------------------------------------------------------


def test_a_new_group_is_audited_and_used_at_once(
    client: TestClient, factory: Factory, cast: Cast, db: Session
) -> None:
    EverydayCatalog(factory, cast)
    assert search(client, "文献馆")["count"] == 0
    login(client, cast.users["regulator"].username)
    response = post(
        client, {"terms": "文献馆、书馆", "expansions": "图书馆 借阅", "theme": "whxx", "is_active": "1"}
    )
    assert response.status_code == 303 and response.headers["location"].startswith(PAGE)
    body = search(client, "文献馆")
    assert body["results"][0]["title"] == "公共图书馆名录"
    assert body["expanded"] is True and body["expansions"] == ["图书馆", "借阅"]
    [created] = changes(db, "catalog:vocabulary:created")
    assert created.actor_name == "factory-regulator" and created.target_type == "vocabulary"
    assert created.summary["after"]["terms"] == ["文献馆", "书馆"]
    assert created.summary["after"]["theme"] == "whxx"
    page = client.get(PAGE, params={"q": "文献馆"})
    assert "文献馆、书馆" in page.text and "图书馆、借阅" in page.text


def test_editing_and_switching_off_a_group(
    client: TestClient, factory: Factory, cast: Cast, db: Session
) -> None:
    EverydayCatalog(factory, cast)
    group = next(g for g in db.scalars(select(VocabularyEntry)) if "办护照" in g.terms)
    login(client, cast.users["operator"].username)
    form = client.get(PAGE, params={"edit": group.id})
    assert form.status_code == 200 and "修改检索词组" in form.text and 'name="id"' in form.text
    response = post(
        client,
        {"id": str(group.id), "terms": " ".join(group.terms), "expansions": "出入境", "theme": group.theme},
    )
    assert response.status_code == 303
    found = [r["title"] for r in search(client, "办护照")["results"]]
    assert found == ["护照签发明细"]  # switched off (is_active not sent): only the word 护照 itself
    [updated] = changes(db, "catalog:vocabulary:updated")
    assert updated.target_id == str(group.id) and updated.actor_name == "operator"
    assert updated.summary["before"]["is_active"] is True and updated.summary["after"]["is_active"] is False
    assert updated.summary["after"]["expansions"] == ["出入境"]
    post(
        client,
        {"id": str(group.id), "terms": " ".join(group.terms), "expansions": "出入境", "is_active": "1"},
    )
    found = [r["title"] for r in search(client, "办护照")["results"]]
    assert found == ["护照签发明细", "出入境证件受理点信息"]  # the operator sees the 不予开放 entry


def test_saving_an_unchanged_group_records_nothing(client: TestClient, cast: Cast, db: Session) -> None:
    group = db.scalars(select(VocabularyEntry).limit(1)).one()
    login(client, cast.users["regulator"].username)
    data = {
        "id": str(group.id),
        "terms": " ".join(group.terms),
        "expansions": " ".join(group.expansions),
        "theme": group.theme,
        "is_active": "1",
    }
    assert post(client, data).status_code == 303
    assert changes(db, "catalog:vocabulary:updated") == []


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"terms": "", "expansions": "公交"}, "terms", "请填写日常说法"),
        ({"terms": "坐车", "expansions": "  "}, "expansions", "请填写目录用语"),
        ({"terms": "坐车", "expansions": "公交", "theme": "no-such"}, "theme", "请选择有效的主题分类"),
        ({"terms": "坐" * 21, "expansions": "公交"}, "terms", "每个词不超过 20 个字"),
        ({"terms": " ".join(f"词{i}" for i in range(31)), "expansions": "公交"}, "terms", "最多 30 个"),
    ],
)
def test_invalid_groups_are_refused_with_a_chinese_message(
    client: TestClient, cast: Cast, db: Session, data: dict[str, str], field: str, message: str
) -> None:
    login(client, cast.users["regulator"].username)
    before = db.scalar(select(func.count()).select_from(VocabularyEntry))
    response = post(client, data)
    assert response.status_code == 422
    assert message in response.text and "检索词组信息有误" in response.text
    assert db.scalar(select(func.count()).select_from(VocabularyEntry)) == before
    assert changes(db, "catalog:vocabulary:created") == []


def test_editing_a_group_that_does_not_exist(client: TestClient, cast: Cast) -> None:
    login(client, cast.users["regulator"].username)
    assert client.get(PAGE, params={"edit": 999999}).status_code == 404
    assert post(client, {"id": "999999", "terms": "坐车", "expansions": "公交"}).status_code == 404
