"""Sensitive-data discovery: check digits, column classification with decoys, spans in free text."""

from __future__ import annotations

import datetime
import random

import pyarrow as pa
import pytest

from kaifang.desensitize import checks
from kaifang.desensitize.detect import DIRECT_IDENTIFIERS, LABELS, ColumnFinding, Kind, find_spans, scan_table
from kaifang.desensitize.mask import default_rule
from kaifang.desensitize.patterns import header_hints
from tests.desensitize import generated


def test_check_digits_on_published_examples() -> None:
    assert checks.id18_valid("11010519491231002X")  # the example of GB 11643
    assert checks.id18_valid("11010519491231002x".upper())
    assert not checks.id18_valid("110105194912310021")
    assert checks.luhn_valid("4111111111111111") and not checks.luhn_valid("4111111111111112")
    assert checks.luhn_valid("79927398713") and not checks.luhn_valid("79927398710")
    assert checks.credit_code_valid("91350100M000100Y43")  # the example of GB 32100
    assert not checks.credit_code_valid("91350100M000100Y44")
    assert not checks.credit_code_valid("91350100M000100I43")  # I is not in the alphabet


def test_vector_checks_agree_with_the_scalar_ones() -> None:
    rng = random.Random(1)
    ids = [generated.id_card(rng) for _ in range(300)] + [generated.id_wrong_check(rng) for _ in range(300)]
    ids = [i for i in ids if len(i) == 18]
    assert checks.id18_mask(pa.array(ids)).to_pylist() == [checks.id18_valid(i) for i in ids]
    cards = [generated.bank_card(rng) for _ in range(200)] + [generated.digits(rng, 16) for _ in range(200)]
    assert checks.luhn_mask(pa.array(cards)).to_pylist() == [checks.luhn_valid(c) for c in cards]
    codes = [generated.credit_code(rng) for _ in range(200)]
    codes += [c[:17] + ("0" if c[17] != "0" else "1") for c in codes[:100]]
    assert checks.credit_code_mask(pa.array(codes)).to_pylist() == [
        checks.credit_code_valid(c) for c in codes
    ]
    assert all(checks.credit_code_valid(c) for c in codes[:200])


def precision_recall(
    findings: list[ColumnFinding], truth: dict[str, Kind | None]
) -> dict[Kind, tuple[float, float]]:
    """Per kind (column level): precision and recall, printed as a table for the test log."""
    found = {f.column: f.kind for f in findings}
    scores: dict[Kind, tuple[float, float]] = {}
    print(f"\n{'kind':<16}{'precision':>10}{'recall':>8}  columns")
    for kind in Kind:
        predicted = {c for c, k in found.items() if k is kind}
        actual = {c for c, k in truth.items() if k is kind}
        hits = len(predicted & actual)
        precision = hits / len(predicted) if predicted else 1.0
        recall = hits / len(actual) if actual else 1.0
        scores[kind] = (precision, recall)
        print(f"{kind:<16}{precision:>10.2f}{recall:>8.2f}  {len(actual)}")
    return scores


def test_classification_on_generated_data_with_decoys() -> None:
    data, truth = generated.labelled_columns()
    findings = scan_table(pa.table(data))
    scores = precision_recall(findings, truth)
    wrong = {f.column: (f.kind, truth[f.column]) for f in findings if f.kind != truth[f.column]}
    assert not wrong, wrong
    for kind, (precision, recall) in scores.items():
        assert precision >= 0.95 and recall >= 0.95, kind
    by_column = {f.column: f for f in findings}
    for decoy in (
        "编号",
        "身份证号",
        "订单号",
        "流水号",
        "负责人",
        "姓名 ",
        "品名",
        "区县",
        "单价",
        "办理日期",
    ):
        assert by_column[decoy].kind is None and not by_column[decoy].personal, decoy
    assert by_column["手机号"].confidence > 0.98 and by_column["手机号"].match_ratio > 0.97
    assert by_column["字段4"].confidence == by_column["字段4"].match_ratio > 0.97  # no hint: the ratio
    assert by_column["手机号"].sample_count == sum(1 for v in data["手机号"] if v and v.strip())


def test_a_stray_phone_number_is_a_span_count_not_a_column_kind() -> None:
    data, _truth = generated.labelled_columns()
    finding = next(f for f in scan_table(pa.table({"办理意见": data["办理意见"]})))
    assert finding.kind is None and finding.confidence == 0.0
    assert finding.embedded == {Kind.MOBILE: 1}
    assert finding.personal
    assert default_rule(finding).op == "mask_spans"


def test_findings_carry_labels_and_personal_flags() -> None:
    rng = random.Random(3)
    table = pa.table(
        {
            "统一社会信用代码": [generated.credit_code(rng) for _ in range(50)],
            "出生日期": [generated.birth_date(rng) for _ in range(50)],
            "身份证": [generated.id_card(rng) for _ in range(50)],
        }
    )
    credit, birth, ident = scan_table(table)
    assert (credit.kind, credit.personal, credit.label) == (Kind.CREDIT_CODE, False, "统一社会信用代码")
    assert (birth.kind, birth.personal) == (Kind.BIRTH_DATE, False)
    assert (ident.kind, ident.personal, ident.label) == (Kind.ID_CARD, True, "居民身份证号码")
    assert ident.to_dict() == {
        "column": "身份证",
        "kind": "id_card",
        "label": "居民身份证号码",
        "confidence": 1.0,
        "match_ratio": 1.0,
        "sample_count": 50,
        "embedded": {},
        "personal": True,
    }
    assert set(LABELS) == set(Kind)
    assert Kind.CREDIT_CODE not in DIRECT_IDENTIFIERS and Kind.BIRTH_DATE not in DIRECT_IDENTIFIERS


def test_typed_columns_integers_dates_and_floats() -> None:
    """IDs and mobiles stored as numbers, birth dates as dates, coordinates as floats."""
    rng = random.Random(4)
    mobiles = [int("1" + rng.choice("3589") + generated.digits(rng, 9)) for _ in range(100)]
    ids = [int(i) for i in (generated.id_card(rng) for _ in range(200)) if i.isdigit()][:100]
    births = [datetime.date(1950 + i % 50, 1 + i % 12, 1 + i % 28) for i in range(100)]
    table = pa.table(
        {
            "sjh": pa.array(mobiles, pa.int64()),
            "字段": pa.array(ids, pa.int64()),
            "出生日期": pa.array(births, pa.date32()),
            "纬度": pa.array([rng.uniform(18, 53) for _ in range(100)], pa.float64()),
            "数量": pa.array([rng.uniform(18, 53) for _ in range(100)], pa.float64()),
            "有效": pa.array([True] * 100),
            "联系电话": pa.array([float(m) for m in mobiles], pa.float64()),  # as a spreadsheet stores them
        }
    )
    kinds = [f.kind for f in scan_table(table)]
    assert kinds == [Kind.MOBILE, Kind.ID_CARD, Kind.BIRTH_DATE, Kind.COORDINATES, None, None, Kind.MOBILE]


def test_sampling_reads_the_end_of_a_sorted_table_too() -> None:
    rng = random.Random(6)
    values = ["无"] * 30_000 + [generated.id_card(rng) for _ in range(30_000)]
    (finding,) = scan_table(pa.table({"身份证号码": pa.array(values)}), sample_rows=2_000)
    assert finding.sample_count == 2_000
    assert finding.kind is Kind.ID_CARD and 0.4 < finding.match_ratio < 0.6


def test_chunked_and_dictionary_columns() -> None:
    rng = random.Random(8)
    chunks = [pa.array([generated.mobile(rng) for _ in range(3_000)]).dictionary_encode() for _ in range(4)]
    table = pa.table({"电话": pa.chunked_array(chunks)})
    (finding,) = scan_table(table, sample_rows=1_000)
    assert (finding.kind, finding.sample_count) == (Kind.MOBILE, 1_000)


def test_empty_and_unscannable_columns() -> None:
    table = pa.table({"姓名": pa.array([None, "  ", ""], pa.string()), "标志": [True, False, True]})
    assert [(f.kind, f.sample_count, f.embedded) for f in scan_table(table)] == [(None, 0, {}), (None, 0, {})]
    assert scan_table(pa.table({"手机": pa.array([], pa.string())}))[0].sample_count == 0


@pytest.mark.parametrize(
    ("header", "kind", "expected"),
    [
        ("手机号码", Kind.MOBILE, True),
        ("联系电话", Kind.LANDLINE, True),
        ("公民身份号码", Kind.ID_CARD, True),
        ("SFZH", Kind.ID_CARD, True),
        ("contactPhone", Kind.MOBILE, True),
        ("name", Kind.PERSON_NAME, True),
        ("company_name", Kind.PERSON_NAME, False),
        ("单位名称", Kind.PERSON_NAME, False),
        ("登录IP", Kind.IP, True),
        ("zip", Kind.IP, False),
        ("ＩＤ Card", Kind.ID_CARD, True),
        ("户籍地址", Kind.ADDRESS, True),
    ],
)
def test_header_hints(header: str, kind: Kind, expected: bool) -> None:
    assert (kind in header_hints(header)) is expected


def test_find_spans_exact_offsets() -> None:
    text = "张先生电话１３８００１３８０００，身份证11010519491231002x，邮箱 li.na@example.com。"
    spans = find_spans(text)
    assert [(text[s:e], k) for s, e, k in spans] == [
        ("１３８００１３８０００", Kind.MOBILE),
        ("11010519491231002x", Kind.ID_CARD),
        ("li.na@example.com", Kind.EMAIL),
    ]
    assert find_spans("订单号110105194912310021，金额12345678元") == []  # fails the ID check
    body = "622202020011223344"
    good = f"{body[:4]} {body[4:8]} {body[8:12]} {body[12:16]} {body[16:]}{generated.luhn_digit(body)}"
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert find_spans(f"卡号 {good} 已冻结") == [(3, 3 + len(good), Kind.BANK_CARD)]
    assert find_spans(f"卡号 {bad} 已冻结") == []  # fails Luhn
    assert find_spans("发送至13800138000@139.com") == [(3, 22, Kind.EMAIL)]


def test_find_spans_precision_and_recall() -> None:
    cells = generated.labelled_text()
    print(f"\n{'span kind':<16}{'precision':>10}{'recall':>8}")
    for kind in generated.SPAN_KINDS:
        expected = {(i, s, e) for i, (_t, spans) in enumerate(cells) for s, e, k in spans if k is kind}
        found = {(i, s, e) for i, (t, _s) in enumerate(cells) for s, e, k in find_spans(t) if k is kind}
        precision = len(found & expected) / len(found) if found else 1.0
        recall = len(found & expected) / len(expected)
        print(f"{kind:<16}{precision:>10.3f}{recall:>8.3f}")
        assert precision >= 0.95 and recall >= 0.95, kind
