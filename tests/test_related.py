"""相关数据集 on an entry's page: shared keywords first, then the same theme, then the same provider;
published entries the visitor may see only."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from kaifang.accounts.permissions import ANONYMOUS
from kaifang.accounts.service import actor_for
from kaifang.catalog.related import related_entries
from kaifang.catalog.service import get_entry
from tests.conftest import Cast, Factory, login
from tests.search_catalog import EverydayCatalog


@pytest.fixture
def catalog(factory: Factory, cast: Cast) -> EverydayCatalog:
    return EverydayCatalog(factory, cast)


def related_section(page: str) -> str:
    start = page.find('id="related-title"')
    assert start >= 0, "no 相关数据集 section"
    section = page[start : page.find("</section>", start)]
    return html.unescape(re.sub(r"<[^>]*>", " ", section))


def test_shared_keywords_then_theme_then_provider(platform, catalog: EverydayCatalog) -> None:
    with platform.db.session() as db:
        entry = get_entry(db, ANONYMOUS, catalog.ids["河东区公共厕所分布"])
        found = related_entries(db, ANONYMOUS, entry)
        first = found[0]
        assert first.entry.title == "河西区公共厕所分布"
        assert first.shared == ["公共厕所"] and first.same_theme and first.same_provider
        rest = [r.entry.title for r in found[1:]]
        # the other entries of the same provider (交通运输委员会), newest first
        assert rest == ["道路停车收费标准", "停车设施分布", "公共停车场泊位信息"]
        assert all(r.same_provider and not r.shared and not r.same_theme for r in found[1:])


def test_theme_ranks_above_provider_alone(platform, catalog: EverydayCatalog) -> None:
    with platform.db.session() as db:
        entry = get_entry(db, ANONYMOUS, catalog.ids["医疗机构名录"])
        found = related_entries(db, ANONYMOUS, entry)
        assert [r.entry.title for r in found] == ["预防接种门诊名录"]  # same theme and provider
        library = get_entry(db, ANONYMOUS, catalog.ids["公共图书馆名录"])
        titles = [r.entry.title for r in related_entries(db, ANONYMOUS, library, limit=2)]
        assert titles == ["城市绿地统计", "城市公园名录"]  # theme + provider, newest first


def test_hidden_entries_are_related_only_for_those_who_may_see_them(
    platform, catalog: EverydayCatalog
) -> None:
    with platform.db.session() as db:
        entry = get_entry(db, ANONYMOUS, catalog.ids["出入境证件受理点信息"])
        public = [r.entry.title for r in related_entries(db, ANONYMOUS, entry)]
        assert "护照签发明细" not in public and "护照办理草稿" not in public
        regulator = actor_for(db, catalog.cast.users["regulator"])
        supervised = [r.entry.title for r in related_entries(db, regulator, entry)]
        assert supervised[0] == "护照签发明细"  # published, 不予开放: theme and provider shared
        assert "护照办理草稿" not in supervised  # drafts are never related


def test_entry_page_shows_related_entries(client: TestClient, catalog: EverydayCatalog) -> None:
    page = client.get(f"/datasets/{catalog.ids['河东区公共厕所分布']}").text
    section = related_section(page)
    assert "相关数据集" in section
    assert section.index("河西区公共厕所分布") < section.index("道路停车收费标准")
    assert "共同标签：公共厕所" in section and "同一主题" in section and "同一提供单位" in section
    assert f'href="/datasets/{catalog.ids["河西区公共厕所分布"]}"' in page


def test_entry_page_never_relates_hidden_entries(client: TestClient, catalog: EverydayCatalog) -> None:
    page = client.get(f"/datasets/{catalog.ids['出入境证件受理点信息']}").text
    assert "护照签发明细" not in page and "护照办理草稿" not in page
    login(client, catalog.cast.users["regulator"].username)
    page = client.get(f"/datasets/{catalog.ids['出入境证件受理点信息']}").text
    assert "护照签发明细" in related_section(page)


def test_entry_without_relations_has_no_section(client: TestClient, cast: Cast) -> None:
    entry_id = cast.entry("published", title="唯一的目录")
    page = client.get(f"/datasets/{entry_id}")
    assert page.status_code == 200 and 'id="related-title"' not in page.text
