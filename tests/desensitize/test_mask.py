"""Masking operators: exact outputs and edge cases, the column-wise path against the scalar one,
keyed pseudonyms, rule validation and JSON."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import random

import pyarrow as pa
import pytest

from kaifang.desensitize.detect import ColumnFinding, Kind
from kaifang.desensitize.mask import (
    Rule,
    RuleError,
    apply_rules,
    default_rule,
    mask_value,
    rules_from_json,
    rules_to_json,
    validate_rules,
)
from tests.desensitize import generated

SECRET = b"provider-one-secret-0123456789ab"
OTHER = b"provider-two-secret-0123456789ab"


def mask(**params: object) -> Rule:
    return Rule("c", "mask", params)


MOBILE = mask(keep_first=3, keep_last=4, char="*")
ID = mask(keep_first=1, keep_last=1)
CARD = mask(keep_last=4)
NAME = mask(keep_surname=True)
EMAIL = mask(keep_first=1, keep_domain=True, width=3)
PLATE = mask(keep_first=2, keep_last=1)


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        (MOBILE, "13800138000", "138****8000"),
        (MOBILE, "１３８００１３８０００", "138****8000"),  # full-width digits normalised
        (MOBILE, "  13800138000\t", "138****8000"),  # surrounding spaces dropped
        (MOBILE, "12345678", "123*5678"),  # one more than kept: one character masked
        (MOBILE, "1234567", "123****"),  # not longer than 3+4: at most ⌊(7−1)/2⌋ = 3 shown
        (MOBILE, "12345", "12***"),
        (MOBILE, "12", "**"),
        (MOBILE, "1", "*"),
        (MOBILE, "", ""),
        (MOBILE, "   ", ""),
        (MOBILE, None, None),
        (ID, "11010519491231002X", "1****************X"),
        (ID, "110105491231002", "1*************2"),
        (ID, "AB", "**"),
        (CARD, "6222021234567890123", "***************0123"),
        (CARD, "1234", "***4"),
        (CARD, "12345", "*2345"),
        (NAME, "张三", "张*"),
        (NAME, "张三丰", "张**"),
        (NAME, "欧阳娜娜", "欧阳**"),
        (NAME, "司马光", "司马*"),
        (NAME, "欧阳", "欧*"),  # never the whole value
        (NAME, "张", "*"),
        (NAME, "阿卜杜·热合曼", "阿******"),
        (EMAIL, "zhangsan@example.com", "z***@example.com"),
        (EMAIL, "a@b.cn", "***@b.cn"),
        (EMAIL, "ＺＨＡＮＧ＠ｅｘａｍｐｌｅ．ｃｏｍ", "Z***@example.com"),
        (EMAIL, "not-an-email", "n***"),
        (PLATE, "京A12345", "京A****5"),
        (PLATE, "粤BD12345", "粤B*****5"),
        (mask(keep_first=1, keep_last=1), "北京市东城区", "北****区"),  # characters, not bytes
        (mask(keep_first=3, keep_last=4, char="#"), "13800138000", "138####8000"),
        (mask(keep_first=3, keep_last=4, width=2), "13800138000", "138**8000"),
        (mask(), "abc", "***"),
    ],
)
def test_mask_outputs(rule: Rule, value: str | None, expected: str | None) -> None:
    assert mask_value(value, rule, SECRET) == expected
    column = apply_rules(pa.table({"c": pa.array([value], pa.string())}), [rule], SECRET).column("c")
    assert column.to_pylist() == [expected]


@pytest.mark.parametrize(
    ("params", "value", "expected"),
    [
        ({"to": "month"}, "2020-05-03", "2020-05"),
        ({"to": "month"}, "2020年5月3日", "2020-05"),
        ({"to": "month"}, "20200503", "2020-05"),
        ({"to": "month"}, "2020-05-03 08:30:00", "2020-05"),
        ({"to": "month"}, "２０２０/5/3", "2020-05"),
        ({"to": "month"}, "2020", None),  # no month: nothing rather than the value
        ({"to": "month"}, "2020-13-01", None),
        ({"to": "year"}, "1990/1/2", "1990"),
        ({"to": "year"}, "去年", None),
        ({"to": "age_band"}, "35", "30-39"),
        ({"to": "age_band"}, "35岁", "30-39"),
        ({"to": "age_band", "band": 5}, "37", "35-39"),
        ({"to": "age_band"}, "三十五", None),
        ({"to": "district"}, "北京市东城区东华门街道南池子大街12号", "北京市东城区"),
        ({"to": "district"}, "广东省深圳市南山区科技园南区1号", "广东省深圳市南山区"),
        ({"to": "district"}, "海淀区中关村大街1号", "海淀区"),
        ({"to": "district"}, "中关村大街1号", None),
        ({"to": "round"}, "116.397128,39.916527", "116.40,39.92"),
        ({"to": "round", "digits": 3}, "39.916527", "39.917"),
        ({"to": "round"}, "北纬39度", None),
        ({"to": "subnet"}, "192.168.1.23", "192.168.1.0/24"),
        ({"to": "subnet", "prefix": 16}, "192.168.1.23", "192.168.0.0/16"),
        ({"to": "subnet"}, "2001:db8:1:2::7", "2001:db8:1::/48"),
        ({"to": "subnet"}, "localhost", None),
        ({"to": "month"}, None, None),
    ],
)
def test_generalize_outputs(params: dict[str, object], value: str | None, expected: str | None) -> None:
    rule = Rule("c", "generalize", params)
    assert mask_value(value, rule, SECRET) == expected
    column = apply_rules(pa.table({"c": pa.array([value], pa.string())}), [rule], SECRET).column("c")
    assert column.to_pylist() == [expected]


def test_generalize_typed_columns() -> None:
    table = pa.table(
        {
            "day": pa.array([datetime.date(2020, 5, 3), None], pa.date32()),
            "lng": pa.array([116.397128, None]),
            "age": pa.array([35, 99], pa.int64()),
        }
    )
    rules = [
        Rule("day", "generalize", {"to": "month"}),
        Rule("lng", "generalize", {"to": "round", "digits": 2}),
        Rule("age", "generalize", {"to": "age_band"}),
    ]
    out = apply_rules(table, rules, SECRET)
    assert out.column("day").to_pylist() == ["2020-05", None]
    assert out.column("lng").to_pylist() == [116.4, None]
    assert out.column("age").to_pylist() == ["30-39", "90-99"]
    phones = pa.table({"电话": pa.array([13800138000.0, None])})
    masked = apply_rules(phones, [Rule("电话", "mask", {"keep_first": 3, "keep_last": 4})], SECRET)
    assert masked.column("电话").to_pylist() == ["138****8000", None]


def test_keep_suppress_replace_and_unruled_columns() -> None:
    table = pa.table({"a": ["x", None], "b": ["秘密", "机密"], "c": [1, 2], "d": ["保留", None]})
    rules = [Rule("a", "replace", {"value": "已隐去"}), Rule("b", "suppress", {}), Rule("d", "keep", {})]
    out = apply_rules(table, rules, SECRET)
    assert out.column_names == ["a", "c", "d"]
    assert out.column("a").to_pylist() == ["已隐去", None]
    assert out.column("c").to_pylist() == [1, 2] and out.column("c").type == pa.int64()
    assert out.column("d").to_pylist() == ["保留", None]
    assert mask_value("x", Rule("b", "suppress", {}), SECRET) is None
    assert mask_value(" x ", Rule("d", "keep", {}), SECRET) == " x "


def test_mask_spans_in_free_text() -> None:
    rule = Rule("c", "mask_spans", {"char": "*"})
    cases = {
        "请联系13800138000": "请联系138****8000",
        "电话：１３８００１３８０００。": "电话：１３８****８０００。",
        "身份证11010519491231002X已核验": "身份证1****************X已核验",
        "邮箱 zhangsan@example.com 卡号6222020200112233445": None,
        "订单号110105194912310021（校验位不符）": "订单号110105194912310021（校验位不符）",
        "无": "无",
    }
    card = "622202020011223344" + generated.luhn_digit("622202020011223344")
    cases["邮箱 zhangsan@example.com 卡号" + card] = "邮箱 z***@example.com 卡号***************" + card[-4:]
    del cases["邮箱 zhangsan@example.com 卡号6222020200112233445"]
    for text, expected in cases.items():
        assert mask_value(text, rule, SECRET) == expected, text
    column = apply_rules(pa.table({"c": [*cases, None]}), [rule], SECRET).column("c")
    assert column.to_pylist() == [*cases.values(), None]


def test_pseudonyms_are_keyed_hmac_sha256_consistent_across_versions_and_differ_across_providers() -> None:
    rule = Rule("id", "pseudonym", {})
    expected = hmac.new(SECRET, b"11010519491231002X", hashlib.sha256).hexdigest()[:16]
    assert mask_value("11010519491231002X", rule, SECRET) == expected
    assert mask_value(" １１０１０５１９４９１２３１００２Ｘ ", rule, SECRET) == expected
    assert expected != hashlib.sha256(b"11010519491231002X").hexdigest()[:16]  # keyed, not a plain hash
    version1 = apply_rules(pa.table({"id": ["11010519491231002X", "A", None]}), [rule], SECRET)
    version2 = apply_rules(pa.table({"id": [None, "A", "11010519491231002X"]}), [rule], SECRET)
    assert version1.column("id").to_pylist() == version2.column("id").to_pylist()[::-1]
    assert version1.column("id")[0].as_py() == expected
    other = apply_rules(pa.table({"id": ["11010519491231002X", "A", None]}), [rule], OTHER)
    assert other.column("id")[0].as_py() != expected and other.column("id")[1] != version1.column("id")[1]
    long_key = b"k" * 100  # keys longer than the block are hashed first (RFC 2104)
    assert mask_value("x", rule, long_key) == hmac.new(long_key, b"x", hashlib.sha256).hexdigest()[:16]
    assert apply_rules(pa.table({"id": ["x"]}), [rule], long_key).column("id")[0].as_py() == mask_value(
        "x", rule, long_key
    )
    with pytest.raises(ValueError, match="密钥"):
        apply_rules(pa.table({"id": ["x"]}), [rule], b"short")


def test_column_path_agrees_with_mask_value_on_generated_values() -> None:
    """Every operator, column-wise, against the scalar reference, on mixed and awkward values."""
    rng = random.Random(11)
    values: list[str | None] = []
    for make in generated.GENERATORS.values():
        values += [make(rng) for _ in range(40)]
    values += [None, "", " ", "１", "ab", "欧阳", "é", "e\u0301", "🙂🙂🙂", "🇨🇳ab", "a\u3000b"]
    values += ["Ａ１２３４５６７８９", "\t13800138000\n"]
    values += values[:50]  # repeated values take the per-distinct path
    rules = [
        Rule("c", "mask", {"keep_first": 3, "keep_last": 4}),
        Rule("c", "mask", {"keep_first": 0, "keep_last": 2, "char": "×", "width": 4}),
        Rule("c", "mask", {"keep_surname": True}),
        Rule("c", "mask", {"keep_first": 1, "keep_domain": True, "width": 3}),
        Rule("c", "pseudonym", {}),
        Rule("c", "generalize", {"to": "month"}),
        Rule("c", "generalize", {"to": "district"}),
        Rule("c", "replace", {"value": "*"}),
        Rule("c", "mask_spans", {"char": "#"}),
    ]
    table = pa.table({"c": pa.array(values, pa.string())})
    for rule in rules:
        column = apply_rules(table, [rule], SECRET).column("c").to_pylist()
        assert column == [mask_value(v, rule, SECRET) for v in values], rule


def test_several_columns_at_once_and_dictionary_columns() -> None:
    table = pa.table(
        {
            "手机": pa.array(["13800138000", "13912345678"]).dictionary_encode(),
            "身份证": ["11010519491231002X", None],
            "备注": ["x", "y"],
        }
    )
    rules = [Rule("手机", "mask", {"keep_first": 3, "keep_last": 4}), Rule("身份证", "pseudonym", {})]
    out = apply_rules(table, rules, SECRET)
    assert out.column("手机").to_pylist() == ["138****8000", "139****5678"]
    assert out.column("身份证").to_pylist() == [mask_value("11010519491231002X", rules[1], SECRET), None]
    assert out.column("备注").to_pylist() == ["x", "y"]


def finding(kind: Kind | None, embedded: dict[Kind, int] | None = None) -> ColumnFinding:
    return ColumnFinding("c", kind, 1.0, 1.0, 10, embedded or {}, False)


def test_default_rules_by_kind() -> None:
    defaults = {kind: default_rule(finding(kind)) for kind in Kind}
    examples = {
        Kind.ID_CARD: ("11010519491231002X", "1****************X"),
        Kind.MOBILE: ("13800138000", "138****8000"),
        Kind.LANDLINE: ("010-12345678", "010*******78"),
        Kind.BANK_CARD: ("6222021234567890123", "***************0123"),
        Kind.EMAIL: ("zhangsan@example.com", "z***@example.com"),
        Kind.PERSON_NAME: ("欧阳娜娜", "欧阳**"),
        Kind.ADDRESS: ("北京市东城区南池子大街12号", "北京市东城区"),
        Kind.PLATE: ("粤BD12345", "粤B*****5"),
        Kind.PASSPORT: ("E12345678", "E******78"),
        Kind.TRAVEL_PERMIT: ("C12345678", "C******78"),
        Kind.IP: ("10.1.2.3", "10.1.2.0/24"),
        Kind.COORDINATES: ("116.397128,39.916527", "116.40,39.92"),
        Kind.BIRTH_DATE: ("1990-03-07", "1990-03"),
        Kind.CREDIT_CODE: ("91350100M000100Y43", "91350100M000100Y43"),
    }
    for kind, (value, expected) in examples.items():
        assert mask_value(value, defaults[kind], SECRET) == expected, kind
    assert defaults[Kind.CREDIT_CODE].op == "keep"
    assert default_rule(finding(None)) == Rule("c", "keep", {})
    assert default_rule(finding(None, {Kind.MOBILE: 1})).op == "mask_spans"
    validate_rules(list(defaults.values())[:1], ["c"])


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([Rule("无此列", "keep", {})], "列“无此列”不在数据中"),
        ([Rule("a", "keep", {}), Rule("a", "mask", {})], "列“a”有多条脱敏规则"),
        ([Rule("a", "encrypt", {})], "列“a”：不支持的脱敏方式“encrypt”"),  # type: ignore[arg-type]
        ([Rule("a", "mask", {"keep_first": -1})], "列“a”：部分遮盖的参数 keep_first 应为 0 到 32 之间的整数"),
        ([Rule("a", "mask", {"keep_first": "3"})], "keep_first 应为 0 到 32"),
        ([Rule("a", "mask", {"keep_last": True})], "keep_last 应为 0 到 32"),
        ([Rule("a", "mask", {"char": "**"})], "char 应为一个非空白字符"),
        ([Rule("a", "mask", {"char": " "})], "char 应为一个非空白字符"),
        ([Rule("a", "mask", {"keep_surname": "yes"})], "keep_surname 应为 true 或 false"),
        ([Rule("a", "mask", {"colour": 1})], "列“a”：部分遮盖没有参数 colour"),
        ([Rule("a", "generalize", {})], "列“a”：泛化需要参数 to"),
        ([Rule("a", "generalize", {"to": "week"})], "to 应为 month、year"),
        ([Rule("a", "generalize", {"to": "round", "digits": 9})], "digits 应为 0 到 8"),
        ([Rule("a", "replace", {})], "替换为固定值需要参数 value"),
        ([Rule("a", "replace", {"value": "x" * 201})], "value 应为不超过 200 个字符的文本"),
        ([Rule("a", "pseudonym", {"salt": "x"})], "假名化（密钥散列）没有参数 salt"),
    ],
)
def test_invalid_rules_are_refused_in_chinese(rules: list[Rule], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        validate_rules(rules, ["a", "b"])
    with pytest.raises(RuleError):
        apply_rules(pa.table({"a": ["x"], "b": ["y"]}), rules, SECRET)


def test_rules_json_round_trip_and_malformed_json() -> None:
    rules = [
        Rule("手机", "mask", {"keep_first": 3, "keep_last": 4, "char": "*"}),
        Rule("身份证", "pseudonym", {}),
        Rule("出生日期", "generalize", {"to": "month"}),
    ]
    data = rules_to_json(rules)
    assert data[0] == {
        "column": "手机",
        "op": "mask",
        "params": {"keep_first": 3, "keep_last": 4, "char": "*"},
    }
    assert rules_from_json(data) == rules
    assert rules_from_json(data, ["手机", "身份证", "出生日期", "其他"]) == rules
    with pytest.raises(RuleError, match="列“手机”不在数据中"):
        rules_from_json(data, ["身份证", "出生日期"])
    for bad in (
        {"column": "a"},
        [{"column": "a"}],
        [{"column": 1, "op": "keep"}],
        [{"column": "a", "op": "keep", "params": []}],
    ):
        with pytest.raises(RuleError):
            rules_from_json(bad)


def test_repeated_values_are_keyed_once_each_with_the_same_result() -> None:
    rng = random.Random(12)
    phones = [generated.mobile(rng) for _ in range(10)]
    values = [rng.choice([*phones, None]) for _ in range(2_000)]
    rule = Rule("手机", "pseudonym", {})
    out = apply_rules(pa.table({"手机": pa.array(values, pa.string())}), [rule], SECRET).column("手机")
    assert out.to_pylist() == [mask_value(v, rule, SECRET) for v in values]
    assert len(set(out.to_pylist()) - {None}) <= 10
