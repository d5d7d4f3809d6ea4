"""Search that understands how people ask (issue 7), through GET /api/v1/datasets and the page:
traditional characters, full-width and case, codes and numbers, pinyin, question words and
fillers, everyday words through the vocabulary, never a dead end, ranking, page = API."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from kaifang.accounts.service import actor_for
from kaifang.audit.service import DataAccess, record_access
from kaifang.audit.tags import Tag
from kaifang.catalog import analysis, ranking
from kaifang.catalog.query import parse
from kaifang.catalog.vocabulary import Lexicon, compile_lexicon, default_groups
from tests.conftest import Cast, Factory
from tests.search_catalog import EverydayCatalog

API = "/api/v1/datasets"


@pytest.fixture
def catalog(factory: Factory, cast: Cast) -> EverydayCatalog:
    return EverydayCatalog(factory, cast)


def search(client: Any, **params: Any) -> dict[str, Any]:
    response = client.get(API, params=params)
    assert response.status_code == 200, response.text[:500]
    body: dict[str, Any] = response.json()
    return body


def titles(body: dict[str, Any]) -> list[str]:
    return [r["title"] for r in body["results"]]


def page_text(client: Any, **params: Any) -> str:
    response = client.get("/datasets", params=params)
    assert response.status_code == 200
    return html.unescape(re.sub(r"<[^>]*>", "", response.text))


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    groups = default_groups()
    return compile_lexicon(tuple((g.terms, g.expansions, g.theme) for g in groups))


# --- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("ＰＭ１０", "pm10"),
        ("PM10", "pm10"),
        ("pm 10", "pm10"),
        ("ＰＭ２．５", "pm2.5"),
        ("PM 2.5", "pm2.5"),
        ("圖書館", "图书馆"),
        ("醫療機構", "医疗机构"),
        ("停車場收費", "停车场收费"),
        ("ＡＱＩ指數", "aqi指数"),
        ("2023年 6月", "2023年 6月"),
    ],
)
def test_normalise_gives_one_spelling(typed: str, normal: str) -> None:
    assert analysis.normalise(typed) == normal


def test_simplified_text_is_left_as_it_is() -> None:
    text = "著名景区 干部 头发 皇后 乾隆 公里 面积 一只"
    assert analysis.normalise(text) == text


def test_pinyin_terms_are_full_pinyin_and_initials() -> None:
    assert analysis.pinyin_terms(["图书馆", "公交", "pm10", "馆"]) == ["tushuguan", "tsg", "gongjiao"]
    assert analysis.full_pinyin("重庆") == "chongqing"  # the reading of the phrase, not of 重 alone


@pytest.mark.parametrize("q", ["ＰＭ１０", "pm10", "PM 10", "Pm10"])
def test_codes_in_any_width_and_case_find_the_entry(client, catalog: EverydayCatalog, q: str) -> None:
    assert titles(search(client, q=q))[0] == "空气质量实时监测"


@pytest.mark.parametrize(
    ("q", "first"),
    [("圖書館", "公共图书馆名录"), ("醫療機構", "医疗机构名录"), ("停車場", "公共停车场泊位信息")],
)
def test_traditional_characters_find_simplified_entries(
    client, catalog: EverydayCatalog, q: str, first: str
) -> None:
    body = search(client, q=q)
    assert titles(body)[0] == first
    assert body["partial"] is False and body["expanded"] is False


def test_indexed_text_is_normalised(client, catalog: EverydayCatalog, cast: Cast) -> None:
    """An entry written with traditional characters and full-width codes is found the usual way."""
    cast.entry("published", title="二氧化氮ＮＯ２監測", keywords=["空氣"], summary="小時濃度。")
    assert titles(search(client, q="二氧化氮监测")) == ["二氧化氮ＮＯ２監測"]
    assert titles(search(client, q="no2")) == ["二氧化氮ＮＯ２監測"]


# --- pinyin -------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["tushuguan", "TuShuGuan", "tsg", "tushu"])
def test_pinyin_and_initials_find_the_entry(client, catalog: EverydayCatalog, q: str) -> None:
    found = titles(search(client, q=q))
    assert found[:2] == ["公共图书馆名录", "图书馆借阅量统计"] or found[:2] == [
        "图书馆借阅量统计",
        "公共图书馆名录",
    ], q


def test_pinyin_of_an_everyday_word_uses_the_vocabulary(client, catalog: EverydayCatalog) -> None:
    """shebao is 社保, which the vocabulary maps to 社会保险 and 参保."""
    body = search(client, q="shebao")
    assert titles(body)[0] == "社会保险经办服务网点"


# --- question words and fillers -----------------------------------------------------------------


def test_query_words_drop_fillers_and_keep_weak_words_optional(lexicon: Lexicon) -> None:
    query = parse("请问哪里有公共厕所的数据", lexicon)
    assert [(c.text, c.required) for c in query.concepts] == [("公共厕所", True), ("数据", False)]
    assert parse("什么 的 吗 怎么", lexicon).concepts == []
    only_weak = parse("数据", lexicon)
    assert [(c.text, c.required) for c in only_weak.concepts] == [("数据", True)]


@pytest.mark.parametrize(
    ("q", "first"),
    [
        ("哪里可以打疫苗", "预防接种门诊名录"),
        ("请问图书馆在哪里", "公共图书馆名录"),
        ("空气质量怎么样", "空气质量实时监测"),
        ("有没有公共厕所的数据", "河东区公共厕所分布"),
    ],
)
def test_questions_find_what_they_ask_for(client, catalog: EverydayCatalog, q: str, first: str) -> None:
    body = search(client, q=q)
    assert titles(body)[0] == first
    assert body["partial"] is False


def test_question_words_alone_do_not_filter(client, catalog: EverydayCatalog) -> None:
    everything = search(client)["count"]
    assert search(client, q="请问 什么 哪里 怎么")["count"] == everything


def test_weak_words_add_but_do_not_decide(client, catalog: EverydayCatalog) -> None:
    """数据 is in no entry, yet 图书馆数据 finds the library entries, not a partial answer."""
    body = search(client, q="图书馆数据")
    assert set(titles(body)) == {"公共图书馆名录", "图书馆借阅量统计"}
    assert body["partial"] is False


# --- everyday words through the vocabulary ------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "first", "theme"),
    [
        ("办护照", "出入境证件受理点信息", "ggaq"),
        ("考驾照", "机动车驾驶人考试场地信息", "jtys"),
        ("交社保", "社会保险经办服务网点", "sbjy"),
        ("带孩子去哪玩", "城市公园名录", "whxx"),
        ("看病", "医疗机构名录", "ylws"),
        ("去哪里打针", "预防接种门诊名录", "ylws"),
    ],
)
def test_everyday_words_find_catalog_words(
    client, catalog: EverydayCatalog, q: str, first: str, theme: str
) -> None:
    body = search(client, q=q)
    assert titles(body)[0] == first, titles(body)
    assert body["expanded"] is True and body["partial"] is False
    assert body["expansions"]
    assert theme in [t["value"] for t in body["themes"]]


def test_everyday_phrase_is_recognised_across_words(lexicon: Lexicon) -> None:
    query = parse("带孩子去哪玩", lexicon)
    assert [c.text for c in query.concepts] == ["带孩子", "去哪玩"]
    assert "儿童" in query.concepts[0].expansions and "公园" in query.concepts[1].expansions


def test_expansions_are_weaker_than_the_persons_own_words(client, catalog: EverydayCatalog) -> None:
    """公园 is in the park entry's title; 绿地, the vocabulary's word for it, in another's."""
    body = search(client, q="公园")
    assert titles(body) == ["城市公园名录", "城市绿地统计"]
    assert body["expanded"] is False  # the person's own word matched


def test_hidden_entries_never_show_through_expansions(client, catalog: EverydayCatalog) -> None:
    """The 不予开放 entry and the draft carry the keyword 护照 itself."""
    for q in ("办护照", "护照", "huzhao"):
        assert not {"护照签发明细", "护照办理草稿"} & set(titles(search(client, q=q, page_size=50))), q
    headers = catalog.cast.headers("regulator")
    supervised = client.get(API, params={"q": "办护照"}, headers=headers).json()
    assert titles(supervised)[0] == "护照签发明细"  # the person's own word, for those who may see it


# --- never a dead end ---------------------------------------------------------------------------


def test_partial_answer_says_so(client, catalog: EverydayCatalog) -> None:
    body = search(client, q="图书馆 月球")
    assert body["partial"] is True
    assert set(titles(body)) == {"公共图书馆名录", "图书馆借阅量统计"}
    assert "部分匹配" in page_text(client, q="图书馆 月球")


def test_expanded_answer_says_so_on_the_page(client, catalog: EverydayCatalog) -> None:
    text = page_text(client, q="办护照")
    assert "没有直接包含“办护照”的目录" in text and "出入境" in text
    assert "相关主题：公共安全" in text


@pytest.mark.parametrize(
    ("q", "meant"),
    [("图书管", "图书馆"), ("公圆", "公园"), ("tushugaun", "图书馆"), ("空气质良", "空气 质量")],
)
def test_did_you_mean(client, catalog: EverydayCatalog, q: str, meant: str) -> None:
    body = search(client, q=q)
    assert meant in body["did_you_mean"], body["did_you_mean"]
    follow = search(client, q=body["did_you_mean"][0])
    assert follow["count"] > 0


def test_did_you_mean_on_the_page_links_to_the_search(client, catalog: EverydayCatalog) -> None:
    response = client.get("/datasets", params={"q": "图书管"})
    assert "您是不是要找" in response.text
    assert 'href="/datasets?q=%E5%9B%BE%E4%B9%A6%E9%A6%86"' in response.text


def test_did_you_mean_never_reveals_hidden_entries(client, catalog: EverydayCatalog) -> None:
    """签发 is a word of the 不予开放 entry only; 签法 sounds the same."""
    assert "签发" not in " ".join(search(client, q="签法")["did_you_mean"])


def test_nothing_found_offers_themes(client, catalog: EverydayCatalog) -> None:
    body = search(client, q="月球基地")
    assert body["count"] == 0 and body["partial"] is False
    text = page_text(client, q="月球基地")
    assert "没有找到符合条件的数据目录" in text and "按主题查找：" in text and "文化休闲" in text


def test_matching_themes_come_from_theme_names_too(client, catalog: EverydayCatalog) -> None:
    body = search(client, q="图书馆")  # 文化休闲's description names 公共图书馆
    assert [t["value"] for t in body["themes"]] == ["whxx"]
    assert body["themes"][0]["count"] == 4


# --- ranking ------------------------------------------------------------------------------------


def test_title_over_keywords_over_summary(client, catalog: EverydayCatalog) -> None:
    assert titles(search(client, q="泊位")) == ["公共停车场泊位信息", "停车设施分布", "道路停车收费标准"]


def test_own_words_over_expansions_over_partial_matches(client, catalog: EverydayCatalog) -> None:
    """办护照: the regulator sees the entry with the word 护照 itself first, then the expansion."""
    supervised = client.get(API, params={"q": "办护照"}, headers=catalog.cast.headers("regulator")).json()
    assert titles(supervised)[:2] == ["护照签发明细", "出入境证件受理点信息"]


def test_freshness_and_use_break_ties(client, platform, catalog: EverydayCatalog) -> None:
    """Two entries alike but for their district: the newer first, until the older is used more."""
    assert titles(search(client, q="公共厕所")) == ["河东区公共厕所分布", "河西区公共厕所分布"]
    older = catalog.ids["河西区公共厕所分布"]
    with platform.db.session() as db:
        actor = actor_for(db, catalog.cast.users["user"])
        for _ in range(3):
            record_access(db, actor, Tag.data_access_download, DataAccess(older, 1, 1, "csv", rows=10))
    ranking.forget_use_counts()
    try:
        assert titles(search(client, q="公共厕所")) == ["河西区公共厕所分布", "河东区公共厕所分布"]
        assert titles(search(client, q="公共厕所", sort="newest"))[0] == "河东区公共厕所分布"
    finally:
        ranking.forget_use_counts()


def test_a_word_match_decides_over_use(client, platform, catalog: EverydayCatalog) -> None:
    """Use is a tie-breaker: a much-used entry matching only in the summary stays below a title match."""
    summary_only = catalog.ids["道路停车收费标准"]
    with platform.db.session() as db:
        actor = actor_for(db, catalog.cast.users["user"])
        for _ in range(20):
            record_access(db, actor, Tag.data_access_query, DataAccess(summary_only, 1, 1, "json", rows=10))
    ranking.forget_use_counts()
    try:
        assert titles(search(client, q="泊位"))[0] == "公共停车场泊位信息"
    finally:
        ranking.forget_use_counts()


# --- the page and the API agree -----------------------------------------------------------------


def _order_on_page(page_html: str, expected: list[str]) -> list[str]:
    text = html.unescape(re.sub(r"<[^>]*>", "", page_html))
    results = text[text.find("检索结果") :]
    positions = {title: results.find(title) for title in expected}
    assert all(pos >= 0 for pos in positions.values()), positions
    return sorted(expected, key=positions.__getitem__)


@pytest.mark.parametrize(
    "q",
    [
        "办护照",
        "圖書館",
        "tushuguan",
        "哪里可以打疫苗",
        "带孩子去哪玩",
        "公园",
        "泊位",
        "图书馆 月球",
        "ＰＭ１０",
    ],
)
def test_page_and_api_give_the_same_ranking(client, catalog: EverydayCatalog, q: str) -> None:
    api_titles = titles(search(client, q=q))
    assert api_titles, q
    response = client.get("/datasets", params={"q": q})
    assert response.status_code == 200
    assert _order_on_page(response.text, api_titles) == api_titles, q
    assert "护照签发明细" not in response.text and "护照办理草稿" not in response.text
