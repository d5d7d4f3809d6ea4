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
    "按第七条约定的时点通过平台提交数据使用情况报告，说明使用情况、成果及相关链接。",
    "期限届满或授权被撤销后停止使用，并删除已获取的数据。",
)


# Use reports (Art. 22): one at the end of the term; a term longer than INTERIM_FROM_DAYS also
# reports every REPORT_EVERY_DAYS, except within LAST_GAP_DAYS of the end (the final report covers
# that stretch). The points are written into the agreement, so this rule decides only new texts'
# wording; existing grants are read with the same rule (see `report_days`).
REPORT_EVERY_DAYS = 90
INTERIM_FROM_DAYS = 180
LAST_GAP_DAYS = 30


def report_days(period_days: int) -> list[int]:
    """The term days (day 1 is the signing day) by whose end a use report is due; the last one is
    the term's last day."""
    interim = []
    if period_days > INTERIM_FROM_DAYS:
        interim = list(range(REPORT_EVERY_DAYS, period_days - LAST_GAP_DAYS, REPORT_EVERY_DAYS))
    return [*interim, period_days]


def _schedule(period_days: int) -> str:
    days = report_days(period_days)
    lines = [f"    {i}. 自签订之日起第 {d} 日（期中报告）" for i, d in enumerate(days[:-1], 1)]
    lines.append(f"    {len(days)}. 使用期限最后一日，即自签订之日起第 {days[-1]} 日（期末报告）")
    return "\n".join(lines)


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
        f"第七条 使用情况报告\n"
        f"  乙方应于下列时点（含当日）前通过平台提交使用情况报告，说明使用情况、成果及相关链接：\n"
        f"{_schedule(application.period_days)}\n"
        f"  报告逾期未提交的，平台标记为“逾期未报”。甲方审阅报告并对乙方履约情况进行核查。\n\n"
        f"第八条 授权撤销与暂停服务\n"
        f"  乙方违反本协议的，甲方可撤销授权并依法处理；撤销即时生效。经市大数据管理中心与甲方"
        f"核实确认后，平台停止对乙方提供服务。\n\n"
        f"第九条 签订\n"
        f"  本协议由双方通过平台签订，平台记录签订人、时间及本协议文本的 SHA-256 摘要。\n"
        f"  乙方联系方式：{application.contact}\n"
    )
