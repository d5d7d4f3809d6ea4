"""Desensitization rules: one per column, validated with Chinese messages, saved as JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from kaifang.desensitize.generalize import TARGETS

Op = Literal["keep", "mask", "pseudonym", "generalize", "suppress", "replace", "mask_spans"]
OPS: tuple[str, ...] = get_args(Op)
OP_LABELS: dict[str, str] = {
    "keep": "保留原值",
    "mask": "部分遮盖",
    "pseudonym": "假名化（密钥散列）",
    "generalize": "泛化",
    "suppress": "删除该列",
    "replace": "替换为固定值",
    "mask_spans": "遮盖文本中的敏感片段",
}
GENERALIZE_LABELS = {
    "month": "日期到月",
    "year": "日期到年",
    "age_band": "年龄分段",
    "district": "地址到区县",
    "round": "坐标降低精度",
    "subnet": "IP 地址到网段",
}
MAX_KEEP = 32
MAX_REPLACEMENT = 200


@dataclass(frozen=True)
class Rule:
    """How one column is desensitized."""

    column: str
    op: Op
    params: Mapping[str, Any] = field(default_factory=dict)


class RuleError(ValueError):
    """A rule that cannot be applied; the message (Chinese) names the column and the problem."""


# --- validation and JSON -------------------------------------------------------------------------


def _count(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_KEEP
    return None if ok else f"应为 0 到 {MAX_KEEP} 之间的整数"


def _positive(limit: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= limit
        return None if ok else f"应为 1 到 {limit} 之间的整数"

    return check


def _char(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) == 1 and not value.isspace()
    return None if ok else "应为一个非空白字符"


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "应为 true 或 false"


def _target(value: Any) -> str | None:
    return None if value in TARGETS else f"应为 {'、'.join(TARGETS)} 之一"


def _digits(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 8
    return None if ok else "应为 0 到 8 之间的整数"


def _replacement(value: Any) -> str | None:
    ok = isinstance(value, str) and len(value) <= MAX_REPLACEMENT
    return None if ok else f"应为不超过 {MAX_REPLACEMENT} 个字符的文本"


_PARAMS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "keep": {},
    "suppress": {},
    "pseudonym": {},
    "mask": {
        "keep_first": _count,
        "keep_last": _count,
        "char": _char,
        "width": _positive(MAX_KEEP),
        "keep_surname": _flag,
        "keep_domain": _flag,
    },
    "generalize": {"to": _target, "band": _positive(100), "digits": _digits, "prefix": _positive(32)},
    "replace": {"value": _replacement},
    "mask_spans": {"char": _char},
}
_REQUIRED = {"generalize": ("to",), "replace": ("value",)}


def validate_rules(rules: Sequence[Rule], columns: Sequence[str]) -> None:
    """Raise RuleError for the first rule that names an unknown column, repeats a column, or has
    an unknown operator or a bad parameter."""
    known, seen = set(columns), set[str]()
    for rule in rules:
        if rule.column not in known:
            raise RuleError(f"列“{rule.column}”不在数据中，无法为它设置脱敏规则")
        if rule.column in seen:
            raise RuleError(f"列“{rule.column}”有多条脱敏规则，每列只能有一条")
        seen.add(rule.column)
        _validate_params(rule)


def _validate_params(rule: Rule) -> None:
    if rule.op not in _PARAMS:
        raise RuleError(f"列“{rule.column}”：不支持的脱敏方式“{rule.op}”，可选：{'、'.join(OPS)}")
    allowed, label = _PARAMS[rule.op], OP_LABELS[rule.op]
    for name in _REQUIRED.get(rule.op, ()):
        if name not in rule.params:
            raise RuleError(f"列“{rule.column}”：{label}需要参数 {name}")
    for name, value in rule.params.items():
        if name not in allowed:
            raise RuleError(f"列“{rule.column}”：{label}没有参数 {name}")
        problem = allowed[name](value)
        if problem:
            raise RuleError(f"列“{rule.column}”：{label}的参数 {name} {problem}")


def rules_to_json(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """Rules as JSON-ready dicts (saved with a resource and with each published version)."""
    return [{"column": r.column, "op": r.op, "params": dict(r.params)} for r in rules]


def rules_from_json(data: Any, columns: Sequence[str] | None = None) -> list[Rule]:
    """Rules from `rules_to_json` output (or a client's JSON), validated; RuleError when malformed.

    With `columns`, every rule must name one of them.
    """
    if not isinstance(data, list):
        raise RuleError("脱敏规则应为列表")
    rules = []
    for item in data:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("column", "op")):
            raise RuleError("每条脱敏规则应包含列名 column 和脱敏方式 op")
        params = item.get("params", {})
        if not isinstance(params, dict):
            raise RuleError(f"列“{item['column']}”：参数 params 应为对象")
        rules.append(Rule(item["column"], cast(Op, item["op"]), params))
    validate_rules(rules, columns if columns is not None else [r.column for r in rules])
    return rules
