"""The rules form's view of operator parameters: which fields a clerk edits, how posted text
becomes parameters, and a plain Chinese description of a rule.

Parameters the form does not show (a name's `keep_surname`, an e-mail's `keep_domain`) are kept
from the saved rule while the operator stays the same, so saving the form never loses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaifang.desensitize.generalize import DEFAULTS, TARGETS
from kaifang.desensitize.mask import GENERALIZE_LABELS, OP_LABELS

__all__ = ["OP_LABELS", "PARAM_FIELDS", "TARGET_CHOICES", "describe", "parse_params"]

PARAM_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "mask": (("keep_first", "保留前几位"), ("keep_last", "保留后几位"), ("char", "遮盖字符")),
    "generalize": (("to", "泛化到"), ("band", "年龄分段宽度")),
    "replace": (("value", "替换为"),),
    "mask_spans": (("char", "遮盖字符"),),
}
TARGET_CHOICES = [(t, GENERALIZE_LABELS[t]) for t in TARGETS]
INTEGERS = frozenset({"keep_first", "keep_last", "band"})
# A row switched to an operator that needs a parameter starts from these; the clerk then adjusts.
REQUIRED_DEFAULTS: dict[str, dict[str, Any]] = {
    "generalize": {"to": TARGETS[0]},
    "replace": {"value": "（已隐藏）"},
}


def parse_params(
    op: str, posted: Mapping[str, str], saved: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Parameters from the form's text fields; blank fields keep the saved value (or the default).

    Raises ValueError with a Chinese message for a number that is not one.
    """
    params: dict[str, Any] = dict(saved or {})
    for key, label in PARAM_FIELDS.get(op, ()):
        text = posted.get(key, "").strip()
        if not text:
            continue
        if key in INTEGERS:
            if not text.isdecimal():
                raise ValueError(f"“{label}”应为整数")
            params[key] = int(text)
        else:
            params[key] = text
    if op == "generalize" and params.get("to") != "age_band":
        params.pop("band", None)
    return {**REQUIRED_DEFAULTS.get(op, {}), **params}


def describe(op: str, params: Mapping[str, Any]) -> str:
    """What a rule does to a value, in a clerk's words."""
    char = params.get("char", "*")
    if op == "mask":
        if params.get("keep_surname"):
            return f"保留姓氏，其余以 {char} 遮盖"
        if params.get("keep_domain"):
            return f"保留首字符和邮箱域名，其余以 {char} 遮盖"
        first, last = params.get("keep_first", 0), params.get("keep_last", 0)
        return f"保留前 {first} 位、后 {last} 位，其余以 {char} 遮盖"
    if op == "generalize":
        target = str(params.get("to", ""))
        text = GENERALIZE_LABELS.get(target, target)
        if target == "age_band":
            text += f"（每 {params.get('band', DEFAULTS['band'])} 岁一段）"
        return text
    if op == "replace":
        return f"全部替换为“{params.get('value', '')}”"
    return {
        "keep": "原样发布",
        "pseudonym": "以本单位密钥生成假名：同一值各版本一致，可关联但不可还原",
        "suppress": "发布的数据中不含该列",
        "mask_spans": f"遮盖文本中的身份证号、手机号等片段（{char}）",
    }.get(op, op)
