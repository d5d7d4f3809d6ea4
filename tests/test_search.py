"""Chinese catalog search through GET /api/v1/datasets: what a person expects to find, ranking,
facets whose counts equal result counts, sorting, pagination and odd input."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from kaifang.accounts.service import actor_for
from kaifang.catalog import service
from tests.conftest import Cast, Factory, complete_fields

API = "/api/v1/datasets"


class Catalog:
    """A small published catalog across four providers, themes, open types, formats and grades.

    Entries are created oldest first; the order is chosen so that ranking by date alone would
    put the wrong entry first in the ranking tests.
    """

    def __init__(self, factory: Factory, cast: Cast) -> None:
        self.cast = cast
        swjt = factory.org("swjt", "海河市水务集团", org_type="utility")
        jw = factory.org("jw", "海河市教育局")
        sthj = factory.org("sthj", "海河市生态环境局")
        publishers = {
            "jtw": (cast.users["publisher"], cast.org),
            "wjw": (cast.users["other_publisher"], cast.other_org),
            "swjt": (factory.user("swjt-pub", org=swjt, roles=("publisher",)), swjt),
            "jw": (factory.user("jw-pub", org=jw, roles=("publisher",)), jw),
            "sthj": (factory.user("sthj-pub", org=sthj, roles=("publisher",)), sthj),
        }
        self.ids: dict[str, int] = {}
        session = factory.platform.db.sessionmaker()
        regulator = actor_for(session, cast.users["regulator"])

        def add(provider: str, title: str, status: str = "published", **fields: Any) -> None:
            """Walk the real workflow, all in one transaction to keep the set-up fast."""
            user, org = publishers[provider]
            actor = actor_for(session, user)
            entry_id = service.create_entry(session, actor, org.id, complete_fields(title=title, **fields)).id
            if status == "published":
                service.submit_entry(session, actor, entry_id)
                service.confirm_entry(session, regulator, entry_id)
                service.publish_entry(session, actor, entry_id)
            self.ids[title] = entry_id

        add(
            "jtw",
            "公交车辆实时位置",
            open_type="conditional",
            formats=["JSON", "API"],
            update_frequency="realtime",
            keywords=["公交", "车辆定位"],
            summary="公交车辆的经纬度位置。",
        )
        add(
            "jw",
            "中小学校名录",
            theme="jywh",
            industry="P",
            formats=["CSV", "XLSX"],
            update_frequency="yearly",
            keywords=["教育"],
            summary="全市中小学的名称、地址与办学类型。",
        )
        add(
            "jtw",
            "公交线路及站点信息",
            keywords=["线路", "站点"],
            summary="全市公交线路走向、站点名称及经纬度，不含实时到站信息。",
        )
        add(
            "jtw",
            "出租汽车营运统计",
            formats=["XLSX"],
            keywords=["出租车"],
            summary="出租汽车营运里程、载客次数的月度统计。",
        )
        add(
            "jtw",
            "公共停车场名录",
            formats=["CSV"],
            keywords=["泊位", "停车"],
            summary="公共停车场名称、地址、车位数。",
        )
        add(
            "sthj",
            "空气质量实时监测",
            theme="sthj",
            industry="N",
            formats=["CSV", "API"],
            update_frequency="realtime",
            keywords=["空气质量"],
            summary="各监测站点PM10、PM2.5、臭氧的小时浓度。",
        )
        add(
            "sthj",
            "重点排污单位名录",
            theme="sthj",
            industry="N",
            formats=["XLSX"],
            grade="L2",
            update_frequency="yearly",
            keywords=["排污"],
            summary="按年度统计的重点排污单位名单。",
        )
        add(
            "wjw",
            "医疗机构名录",
            theme="ylws",
            industry="Q",
            formats=["CSV"],
            update_frequency="quarterly",
            keywords=["医院", "诊所"],
            summary="医疗机构名称、级别、地址与床位数统计。",
        )
        add(
            "wjw",
            "传染病疫情统计",
            theme="ylws",
            industry="Q",
            open_type="closed",
            update_frequency="monthly",
            keywords=["疫情"],
            summary="法定传染病病例统计。",
        )
        add(
            "wjw",
            "儿童健康体检统计",
            theme="ylws",
            industry="Q",
            formats=["XLSX"],
            update_frequency="yearly",
            keywords=["体检"],
            summary="覆盖全市中小学校学生的体检结果，按学校汇总，学校卫生工作参考。",
        )
        add(
            "swjt",
            "供水管网水压监测",
            theme="shfw",
            industry="D",
            open_type="conditional",
            formats=["API"],
            update_frequency="realtime",
            keywords=["供水", "水压"],
            summary="主要管网节点的水压读数。",
        )
        add(
            "swjt",
            "居民用水量统计",
            theme="shfw",
            industry="D",
            formats=["XLSX"],
            grade="L2",
            keywords=["用水"],
            summary="分区居民月度用水量统计。",
        )
        add("jtw", "火星路公交专线调整方案", status="draft")
        session.commit()
        session.close()


@pytest.fixture
def catalog(factory: Factory, cast: Cast) -> Catalog:
    return Catalog(factory, cast)


def search(client, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = client.get(API, params=params, headers=headers or {})
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def titles(body: dict[str, Any]) -> list[str]:
    return [r["title"] for r in body["results"]]


# --- what a person expects ----------------------------------------------------------------------


def test_word_finds_entry_about_it(client, catalog: Catalog) -> None:
    body = search(client, q="公交")
    assert set(titles(body)) == {"公交车辆实时位置", "公交线路及站点信息"}
    assert body["count"] == 2 and body["partial"] is False


def test_two_word_query_ranks_entry_matching_both_in_title_first(client, catalog: Catalog) -> None:
    body = search(client, q="公交 实时")
    assert titles(body)[0] == "公交车辆实时位置"
    assert "公交线路及站点信息" in titles(body)  # both words, one only in the summary
    assert "空气质量实时监测" not in titles(body)  # only one of the words
    assert body["partial"] is False


def test_title_match_ranks_above_summary_match(client, catalog: Catalog) -> None:
    body = search(client, q="学校")
    assert titles(body) == ["中小学校名录", "儿童健康体检统计"]


def test_keywords_are_searched(client, catalog: Catalog) -> None:
    assert titles(search(client, q="泊位")) == ["公共停车场名录"]
    assert titles(search(client, q="出租车")) == ["出租汽车营运统计"]


def test_provider_name_is_searched(client, catalog: Catalog) -> None:
    assert set(titles(search(client, q="水务"))) == {"供水管网水压监测", "居民用水量统计"}
    assert set(titles(search(client, q="水务集团 水压"))) == {"供水管网水压监测"}


def test_full_width_and_case_insensitive_latin(client, catalog: Catalog) -> None:
    for q in ("ＰＭ１０", "PM10", "pm10", "Pm10"):
        assert titles(search(client, q=q)) == ["空气质量实时监测"], q
    assert titles(search(client, q="pm")) == ["空气质量实时监测"]  # Latin prefix


def test_no_hits(client, catalog: Catalog) -> None:
    body = search(client, q="月球基地")
    assert body["count"] == 0 and body["results"] == [] and body["partial"] is False
    assert all(v["count"] == 0 for values in body["facets"].values() for v in values)


def test_stopwords_alone_do_not_filter(client, catalog: Catalog) -> None:
    everything = search(client)["count"]
    assert search(client, q="的 和 与")["count"] == everything


SYNTAX = [
    '"',
    "*",
    "AND",
    "OR",
    "NOT",
    ")",
    "(",
    "'",
    "''",
    '"公交',
    "公交*",
    "公交 AND",
    "AND 公交",
    "NEAR(公交 实时)",
    "title:公交",
    "^公交",
    "-公交",
    ":*",
    "&",
    "|",
    "!",
    "\\",
    "公交 & 实时",
    "公交 | 实时",
    "公交:*",
    "{公交}",
    "+-*/",
    "%",
    "_",
    "公交' OR '1'='1",
]


def test_query_syntax_characters_are_plain_text(client, catalog: Catalog) -> None:
    for q in SYNTAX:
        body = search(client, q=q)
        assert body["count"] >= len(body["results"]), q
    assert titles(search(client, q='"公交"')) == titles(search(client, q="公交"))
    assert titles(search(client, q="公交*")) == titles(search(client, q="公交"))


def test_partial_flag_when_no_entry_matches_every_word(client, catalog: Catalog) -> None:
    body = search(client, q="公交 月球")
    assert body["partial"] is True
    assert set(titles(body)) == {"公交车辆实时位置", "公交线路及站点信息"}
    assert search(client, q="公交 实时")["partial"] is False
    assert search(client, q="公交")["partial"] is False


def test_hidden_entries_do_not_change_the_public_answer(client, catalog: Catalog) -> None:
    """A draft (火星路公交专线调整方案) matching every word must not stop the partial fallback:
    the public gets the same answer as if the hidden entry did not exist."""
    body = search(client, q="公交 火星")
    assert body["partial"] is True
    assert set(titles(body)) == {"公交车辆实时位置", "公交线路及站点信息"}
    # 传染病疫情统计 (不予开放) matches both words; no visible entry does
    closed = search(client, q="传染病 统计")
    assert closed["partial"] is True and closed["count"] == 5
    assert "传染病疫情统计" not in titles(closed)


# --- facets -------------------------------------------------------------------------------------


def _check_facets(client, params: dict[str, Any], headers: dict[str, str] | None = None) -> int:
    """Selecting any facet value gives exactly the count the facet showed for it."""
    body = search(client, headers, **params)
    checked = 0
    for facet, values in body["facets"].items():
        if facet in params:
            continue
        assert sum(v["count"] for v in values) >= body["count"] or facet == "format"
        for value in values:
            assert value["label"], (facet, value)
            narrowed = search(client, headers, **params, **{facet: value["value"]})
            assert narrowed["count"] == value["count"], (params, facet, value)
            assert narrowed["count"] <= body["count"]
            assert len(narrowed["results"]) == min(value["count"], narrowed["page_size"])
            selected = {v["value"]: v["selected"] for v in narrowed["facets"][facet]}
            assert selected[value["value"]] is True
            checked += 1
    return checked


def test_facet_counts_equal_result_counts(client, catalog: Catalog) -> None:
    assert _check_facets(client, {}) > 20
    assert _check_facets(client, {"q": "统计"}) > 5
    assert _check_facets(client, {"open_type": "unconditional"}) > 10
    assert _check_facets(client, {"theme": "jtys", "q": "公交"}) > 3


def test_facet_counts_for_the_regulator(client, catalog: Catalog) -> None:
    headers = catalog.cast.headers("regulator")
    assert _check_facets(client, {}, headers) > 20


def test_single_valued_facets_add_up_to_the_count(client, catalog: Catalog) -> None:
    for params in ({}, {"q": "统计"}, {"q": "公交"}, {"theme": "ylws"}):
        body = search(client, **params)
        for facet in {"theme", "provider", "open_type", "update_frequency", "grade"} - set(params):
            assert sum(v["count"] for v in body["facets"][facet]) == body["count"], (params, facet)


def test_facet_labels_are_chinese(client, catalog: Catalog) -> None:
    facets = search(client)["facets"]
    labels = {facet: {v["value"]: v["label"] for v in values} for facet, values in facets.items()}
    assert labels["theme"]["jtys"] == "交通运输"
    assert labels["provider"]["swjt"] == "海河市水务集团"
    assert labels["open_type"]["unconditional"] == "无条件开放"
    assert labels["update_frequency"]["realtime"] == "实时"
    assert labels["grade"]["L1"].startswith("第一级")


def test_filters_narrow_and_combine(client, catalog: Catalog) -> None:
    everything = search(client)["count"]
    assert everything == 11  # 13 entries less a draft and a 不予开放 entry
    jtw = search(client, provider="jtw")
    assert jtw["count"] == 4
    both = search(client, provider=["jtw", "swjt"])
    assert both["count"] == 6  # values of one facet widen (OR)
    narrowed = search(client, provider=["jtw", "swjt"], format="XLSX")
    assert set(titles(narrowed)) == {"出租汽车营运统计", "居民用水量统计"}  # facets narrow (AND)
    assert search(client, theme="no-such-theme")["count"] == 0


# --- order and pages ----------------------------------------------------------------------------


def test_sort_newest_orders_by_published_date(client, catalog: Catalog) -> None:
    for params in ({"sort": "newest"}, {"sort": "newest", "q": "统计"}, {}):
        body = search(client, page_size=50, **params)
        dates = [r["published_at"] for r in body["results"]]
        assert dates == sorted(dates, reverse=True), params
        assert body["sort"] == "newest"
    newest = titles(search(client, sort="newest", page_size=50))
    assert newest[0] == "居民用水量统计" and newest[-1] == "公交车辆实时位置"


def test_relevance_and_newest_differ(client, catalog: Catalog) -> None:
    relevance = titles(search(client, q="学校"))
    newest = titles(search(client, q="学校", sort="newest"))
    assert relevance == ["中小学校名录", "儿童健康体检统计"]
    assert newest == ["儿童健康体检统计", "中小学校名录"]


def test_pagination_is_disjoint_and_complete(client, catalog: Catalog) -> None:
    everything = search(client, q="统计", page_size=50)
    assert everything["count"] == 5
    seen: list[str] = []
    for page in (1, 2, 3):
        body = search(client, q="统计", page=page, page_size=2)
        assert body["count"] == 5 and body["page"] == page
        assert len(body["results"]) == (2 if page < 3 else 1)
        seen += titles(body)
    assert seen == titles(everything)  # same order, nothing twice, nothing missing
    beyond = search(client, q="统计", page=4, page_size=2)
    assert beyond["count"] == 5 and beyond["results"] == []


# --- the page and the API agree -----------------------------------------------------------------


def _order_on_page(page_html: str, expected: list[str]) -> list[str]:
    text = html.unescape(re.sub(r"<[^>]*>", "", page_html))  # titles may carry <mark> highlights
    positions = {title: text.find(title) for title in expected}
    missing = [t for t, pos in positions.items() if pos < 0]
    assert not missing, f"not on the page: {missing}"
    return sorted(expected, key=positions.__getitem__)


def test_page_and_api_give_the_same_order(client, catalog: Catalog) -> None:
    for params in (
        {"q": "公交 实时"},
        {"q": "统计"},
        {"q": "统计", "sort": "newest"},
        {"q": "学校"},
        {"provider": "jtw"},
        {"q": "公交 月球"},
    ):
        api_titles = titles(search(client, **params))
        response = client.get("/datasets", params=params)
        if response.status_code == 404:
            pytest.skip("the /datasets page is not built yet")
        assert response.status_code == 200
        assert _order_on_page(response.text, api_titles) == api_titles, params
        assert "火星路公交专线调整方案" not in response.text and "传染病疫情统计" not in response.text


# --- the index follows every change -------------------------------------------------------------


def test_retired_entry_leaves_search_and_facets(client, catalog: Catalog) -> None:
    cast = catalog.cast
    before = search(client)
    entry_id = catalog.ids["公共停车场名录"]
    response = client.post(
        f"{API}/{entry_id}/retire", json={"comment": "停车场已移交"}, headers=cast.headers("publisher")
    )
    assert response.status_code == 200
    after = search(client)
    assert after["count"] == before["count"] - 1
    assert search(client, q="泊位")["count"] == 0
    providers = {v["value"]: v["count"] for v in after["facets"]["provider"]}
    assert providers["jtw"] == 3


def test_new_publication_appears_at_once(client, catalog: Catalog) -> None:
    cast = catalog.cast
    assert search(client, q="地铁")["count"] == 0
    cast.entry("published", title="地铁站点出入口", keywords=["地铁"])
    assert titles(search(client, q="地铁")) == ["地铁站点出入口"]
    assert titles(search(client, sort="newest"))[0] == "地铁站点出入口"


def test_renamed_provider_is_searchable_under_its_new_name(client, platform, catalog: Catalog) -> None:
    from kaifang.accounts import orgs
    from kaifang.accounts.service import actor_for

    with platform.db.session() as db:
        operator = actor_for(db, catalog.cast.users["operator"])
        org = orgs.get_org_by_slug(db, "swjt")
        orgs.update_org(
            db, operator, org.id, orgs.OrgForm(name="海河市供排水集团", slug="swjt", org_type="utility")
        )
    assert search(client, q="水务")["count"] == 0
    assert set(titles(search(client, q="供排水"))) == {"供水管网水压监测", "居民用水量统计"}
    labels = {v["value"]: v["label"] for v in search(client)["facets"]["provider"]}
    assert labels["swjt"] == "海河市供排水集团"
