"""The usage agreement (使用协议) text, generated once on approval from the application. The text
is what both sides sign: its SHA-256 is recorded with each signature, so it must never be
re-rendered from changed data."""

from __future__ import annotations

import hashlib

from kaifang.access.models import Application
from kaifang.accounts.models import USER_TYPE_LABELS, Organisation, User
from kaifang.catalog.models import Entry
from kaifang.datastore.models import Resource

OBLIGATIONS = (
    "按照本协议约定的用途、场景和期限使用数据，不得超出约定范围使用。",
    "落实本协议所列安全保障措施，防止数据泄露、篡改和丢失；发现安全事件立即告知提供方。",
    "不得将数据或其副本向任何第三方转让、提供或公开（禁止再转让）。",
    "在使用成果中注明数据来源：“数据来源：{provider}，海河市公共数据开放平台”。",
    "在使用期限届满前通过平台提交数据使用情况报告，说明使用过程、成果及相关链接。",
    "期限届满或授权被撤销后停止使用，并删除已获取的数据。",
)


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _applicant(user: User) -> str:
    kind = USER_TYPE_LABELS.get(user.user_type, user.user_type)  # type: ignore[call-overload]
    name = user.organisation_name or user.display_name
    credit = f"（统一社会信用代码：{user.credit_code}）" if user.credit_code else ""
    return f"{name}{credit}，{kind}，平台账号 {user.username}"


def render(
    application: Application, entry: Entry, provider: Organisation, user: User, resources: list[Resource]
) -> str:
    """The agreement text for an approved application."""
    resource_lines = "\n".join(f"    {i}. {r.name}（资源编号 {r.id}）" for i, r in enumerate(resources, 1))
    duties = "\n".join(f"    {i}. {d.format(provider=provider.name)}" for i, d in enumerate(OBLIGATIONS, 1))
    return (
        f"海河市公共数据有条件开放使用协议\n"
        f"协议编号：KF-SQ-{application.id:06d}\n\n"
        f"数据提供方（甲方）：{provider.name}\n"
        f"数据使用方（乙方）：{_applicant(user)}\n\n"
        f"第一条 数据范围\n"
        f"  数据目录：{entry.title}（目录编号 {entry.id}）\n"
        f"  数据资源：\n{resource_lines}\n\n"
        f"第二条 使用用途\n  {application.purpose}\n\n"
        f"第三条 使用场景\n  {application.scenario}\n\n"
        f"第四条 使用期限\n  自双方在平台完成签订之日起 {application.period_days} 日。\n\n"
        f"第五条 安全保障措施\n  {application.security_measures}\n\n"
        f"第六条 乙方义务\n{duties}\n\n"
        f"第七条 授权撤销\n"
        f"  乙方违反本协议的，甲方可撤销授权并依法处理；撤销即时生效。\n\n"
        f"第八条 签订\n"
        f"  本协议由双方通过平台签订，平台记录签订人、时间及本协议文本的 SHA-256 摘要。\n"
        f"  乙方联系方式：{application.contact}\n"
    )
