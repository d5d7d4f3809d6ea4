"""The C extension (kaifang/desensitize/_hmac.c) against the paths without it: the same
pseudonyms and masks as the DuckDB SQL forms, the Arrow-kernel mask and the scalar reference,
on awkward values, both offset widths, sliced arrays and several threads."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from kaifang.desensitize import mask as m
from kaifang.desensitize.mask import Rule, apply_rules, mask_value
from tests.desensitize import generated

SECRET = b"provider-one-secret-0123456789ab"

native = pytest.mark.skipif(m._NATIVE is None, reason="C extension not built (no compiler or libssl-dev)")


def awkward_values(seed: int, n: int = 3_000) -> list[str | None]:
    """Random values: ASCII, CJK, emoji, combining marks, empty, null, longer than a SHA block."""
    rng = random.Random(seed)
    alphabet = "0123456789abcXYZ 张王欧阳娜é\u0301🙂１２３\u3000"
    values: list[str | None] = []
    for make in generated.GENERATORS.values():
        values += [make(rng) for _ in range(20)]
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:
            values.append(None)
        elif kind < 0.1:
            values.append("")
        elif kind < 0.2:  # beyond one 64-byte block, and beyond two
            values.append("".join(rng.choice(alphabet) for _ in range(rng.randint(30, 200))))
        else:
            values.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 20))))
    values += ["a" * 55, "a" * 56, "a" * 63, "a" * 64, "a" * 65, "张" * 40]  # SHA padding edges
    return values


def columns(values: list[str | None]) -> list[pa.Array]:
    """The canonical column as string and large_string, whole and sliced (non-zero offsets)."""
    text = m._canonical_column(pa.array(values, pa.string()))
    large = text.cast(pa.large_string())
    return [text, large, text.slice(7), large.slice(13, len(values) - 50), text.slice(3, 0)]


def sql(text: pa.Array, rule: Rule) -> list[str | None]:
    return m._apply_sql({"v": (text, rule)}, SECRET)["v"].to_pylist()


@native
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_native_pseudonyms_equal_sql_and_hmac(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    monkeypatch.setattr(m, "_NATIVE_CHUNK", 100)  # several ranges even on small columns
    values = awkward_values(21)
    rule = Rule("v", "pseudonym", {})
    for text in columns(values):
        out = m._pseudonym_column(text, SECRET, threads=threads)
        out.validate(full=True)
        assert out.type == pa.string()
        assert out.to_pylist() == sql(text, rule)
        expected = [None if v is None else v and m.pseudonym(v, SECRET) for v in text.to_pylist()]
        assert out.to_pylist() == expected


@native
def test_native_pseudonyms_with_a_long_secret() -> None:
    secret = bytes(range(100))  # longer than a block: hashed first (RFC 2104)
    text = m._canonical_column(pa.array(awkward_values(22, 200), pa.string()))
    assert m._pseudonym_column(text, secret).to_pylist() == [
        None if v is None else v and m.pseudonym(v, secret) for v in text.to_pylist()
    ]


MASKS = [
    {"keep_first": 3, "keep_last": 4},
    {"keep_first": 1, "keep_last": 1},
    {"keep_first": 0, "keep_last": 4},
    {"keep_first": 2, "keep_last": 0, "char": "×"},
    {"keep_first": 0, "keep_last": 2, "char": "×", "width": 4},
    {"keep_first": 1, "keep_last": 0, "char": "#", "width": 3},
    {"keep_first": 0, "keep_last": 0},
    {"keep_first": 20, "keep_last": 20},  # every value short
]


@native
@pytest.mark.parametrize("params", MASKS)
def test_native_masks_equal_sql_and_mask_value(params: dict[str, object]) -> None:
    rule = Rule("v", "mask", {"char": "*", **params})
    values = awkward_values(23)
    for text in columns(values):
        out = m._mask_column(text, rule.params)
        assert out is not None
        out.validate(full=True)
        assert out.to_pylist() == sql(text, rule)
        assert out.to_pylist() == [mask_value(v, rule, SECRET) for v in text.to_pylist()]


@pytest.mark.parametrize("params", MASKS)
def test_arrow_masks_equal_mask_value_or_leave_short_values_to_sql(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, object]
) -> None:
    monkeypatch.setattr(m, "_NATIVE", None)
    rule = Rule("v", "mask", {"char": "*", **params})
    long_enough = [v for v in awkward_values(24) if v is None or len(m.canonical(v)) > 40 or not v.strip()]
    for values in (awkward_values(24), long_enough):
        for text in columns(values):
            out = m._mask_column(text, rule.params)
            if out is None:  # some value is not longer than the kept characters
                assert any(
                    0 < len(v) <= rule.params["keep_first"] + rule.params["keep_last"]
                    for v in text.to_pylist()
                    if v
                )
                continue
            assert out.to_pylist() == [mask_value(v, rule, SECRET) for v in text.to_pylist()]
    assert m._mask_column(columns(long_enough)[0], rule.params) is not None


@pytest.mark.parametrize("built", [True, False])
def test_apply_rules_with_and_without_the_extension(monkeypatch: pytest.MonkeyPatch, built: bool) -> None:
    """The whole-table path (several columns, repeated values, dictionaries), both ways."""
    if not built:
        monkeypatch.setattr(m, "_NATIVE", None)
    elif m._NATIVE is None:
        pytest.skip("C extension not built")
    values = awkward_values(25, 1_000)
    repeated = [values[i % 7] for i in range(len(values))]
    table = pa.table(
        {
            "a": pa.array(values, pa.string()),
            "b": pa.array(values, pa.large_string()),
            "c": pa.array(repeated, pa.string()),
            "d": pa.array(values, pa.string()).dictionary_encode(),
        }
    )
    rules = [
        Rule("a", "pseudonym", {}),
        Rule("b", "mask", {"keep_first": 3, "keep_last": 4}),
        Rule("c", "pseudonym", {}),
        Rule("d", "mask", {"keep_first": 1, "keep_last": 1, "char": "#", "width": 2}),
    ]
    out = apply_rules(table, rules, SECRET)
    for rule in rules:
        source = table.column(rule.column).to_pylist()
        assert out.column(rule.column).to_pylist() == [mask_value(v, rule, SECRET) for v in source], rule
