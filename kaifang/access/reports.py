"""Use reports (使用情况报告, Art. 22) and compliance checks (履约核实, Art. 27). No HTTP in here.

The reporting points come from the agreement (`agreement.report_days`): a grant of N days has a
final report due on its last day, and long terms interim ones. A point without a report after its
due date is 逾期未报. Only the grantee files; only the provider's reviewers review reports and
record compliance checks; the supervisors read everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from kaifang.access.agreement import report_days
from kaifang.access.grants import city_today
from kaifang.access.models import (
    Application,
    ComplianceCheck,
    Conclusion,
    Grant,
    ReportStatus,
    UseReport,
)
from kaifang.accounts.models import OrgRole
from kaifang.accounts.permissions import Actor, require, require_login, require_org_role
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.db import MAX_ID, utcnow
from kaifang.errors import Conflict, InvalidInput, NotFound
from kaifang.notify.service import notify, provider_staff

DUE_SOON_DAYS = 30  # a point is listed as 待提交 this many days before it is due
MAX_TEXT = 4000
MAX_LINKS = 2000

# The state of one reporting point, as the grantee and the provider see it.
STATE_LABELS = {
    "upcoming": "未到期",
    "due": "待提交",
    "overdue": "逾期未报",
    "submitted": "待审阅",
    "accepted": "已认可",
    "needs_more": "需补充",
}


@dataclass(frozen=True)
class ReportPoint:
    """One reporting point of a grant and the report filed for it, if any."""

    grant: Grant
    number: int
    due_on: date
    final: bool
    report: UseReport | None
    state: str

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def late(self) -> bool:
        """Filed after the due date (kept visible after the report arrived)."""
        return self.report is not None and self.report.submitted_at.date() > self.due_on

    @property
    def flagged(self) -> bool:
        """What the grantee must do something about."""
        return self.state in ("due", "overdue", "needs_more")


def _state(due_on: date, report: UseReport | None, today: date) -> str:
    if report is not None:
        return str(report.status)
    if today > due_on:
        return "overdue"
    return "due" if today >= due_on - timedelta(days=DUE_SOON_DAYS) else "upcoming"


def due_dates(grant: Grant) -> list[date]:
    """The grant's reporting points as dates: term day d ends on starts_on + d - 1. Points after a
    revocation are dropped, except the one that covers the day of revocation (the use so far)."""
    period = (grant.ends_on - grant.starts_on).days
    dates = [grant.starts_on + timedelta(days=d - 1) for d in report_days(period)]
    if grant.revoked_at is not None:
        cut = grant.revoked_at.date()
        dates = [d for i, d in enumerate(dates) if i == 0 or dates[i - 1] < cut]
    return dates


def schedule(grant: Grant, reports: list[UseReport], today: date | None = None) -> list[ReportPoint]:
    """Every reporting point of one grant with its state on `today`."""
    day = today or city_today()
    filed = {r.point: r for r in reports}
    dates = due_dates(grant)
    return [
        ReportPoint(grant, n, due, n == len(dates), filed.get(n), _state(due, filed.get(n), day))
        for n, due in enumerate(dates, 1)
    ]


def _reports_by_grant(db: Session, grant_ids: list[int]) -> dict[int, list[UseReport]]:
    found: dict[int, list[UseReport]] = {g: [] for g in grant_ids}
    for report in db.scalars(select(UseReport).where(UseReport.grant_id.in_(grant_ids))):
        found[report.grant_id].append(report)
    return found


def points_for(db: Session, grants: list[Grant], today: date | None = None) -> list[ReportPoint]:
    """The reporting points of several grants, by due date."""
    reports = _reports_by_grant(db, [g.id for g in grants])
    points = [p for g in grants for p in schedule(g, reports[g.id], today)]
    return sorted(points, key=lambda p: (p.due_on, p.grant.id))


# --- reading ------------------------------------------------------------------------------------


def _provider_of(db: Session, grant: Grant) -> int:
    provider = db.scalar(select(Application.provider_id).where(Application.id == grant.application_id))
    assert provider is not None  # foreign key
    return provider


def get_grant(db: Session, actor: Actor, grant_id: int) -> tuple[Grant, int]:
    """A grant and its provider, for the grantee, the provider's staff and the supervisors."""
    require_login(actor)
    grant = db.get(Grant, grant_id) if 0 < grant_id <= MAX_ID else None
    if grant is None:
        raise NotFound("未找到该使用授权")
    provider_id = _provider_of(db, grant)
    if not (actor.user_id == grant.user_id or actor.is_member(provider_id) or actor.is_supervisor):
        raise NotFound("未找到该使用授权")
    return grant, provider_id


def grant_points(db: Session, actor: Actor, grant_id: int, today: date | None = None) -> list[ReportPoint]:
    grant, _ = get_grant(db, actor, grant_id)
    return points_for(db, [grant], today)


def compliance_checks(db: Session, actor: Actor, grant_id: int) -> list[ComplianceCheck]:
    grant, _ = get_grant(db, actor, grant_id)
    return list(
        db.scalars(
            select(ComplianceCheck)
            .where(ComplianceCheck.grant_id == grant.id)
            .order_by(ComplianceCheck.checked_on.desc(), ComplianceCheck.id.desc())
        )
    )


def user_points(db: Session, actor: Actor, today: date | None = None) -> list[ReportPoint]:
    """The actor's own reporting points over all their grants (我的申请)."""
    require_login(actor)
    grants = list(
        db.scalars(select(Grant).where(Grant.user_id == actor.user_id).options(selectinload(Grant.entry)))
    )
    return points_for(db, grants, today)


def provider_flags(db: Session, actor: Actor, today: date | None = None) -> list[ReportPoint]:
    """What the provider's reviewers must look at: 逾期未报 points and reports awaiting review, on
    the grants of every provider where the actor reviews (none for others)."""
    require_login(actor)
    orgs = actor.orgs_with_role(OrgRole.reviewer)
    if not orgs:
        return []
    grants = list(
        db.scalars(
            select(Grant)
            .join(Application, Application.id == Grant.application_id)
            .where(Application.provider_id.in_(orgs))
            .options(selectinload(Grant.entry))
        )
    )
    return [p for p in points_for(db, grants, today) if p.state in ("overdue", "submitted")]


# --- filing and reviewing -----------------------------------------------------------------------


@dataclass
class ReportForm:
    work: str = ""  # 使用情况
    results: str = ""  # 成果
    links: str = ""


ATTACHMENT_MAX_MB = 20
# Documents and images a report is made of; nothing a browser would run if opened.
ATTACHMENT_TYPES = (
    ".pdf",
    ".doc",
    ".docx",
    ".xls",
    ".xlsx",
    ".ppt",
    ".pptx",
    ".zip",
    ".png",
    ".jpg",
    ".jpeg",
)


@dataclass(frozen=True)
class Attachment:
    """A file already in the store (the caller deletes it if the report is refused)."""

    key: str
    name: str
    size: int


def attachment_allowed(name: str) -> bool:
    return name.lower().endswith(ATTACHMENT_TYPES) and 0 < len(name) <= 200


def _clean(form: ReportForm) -> ReportForm:
    errors: dict[str, str] = {}
    work, results = (form.work or "").strip(), (form.results or "").strip()
    links = (form.links or "").strip()
    if len(work) < 10:
        errors["work"] = "请填写数据使用情况（不少于 10 个字）"
    if len(results) < 4:
        errors["results"] = "请填写使用成果；尚无成果的，请说明进展"
    if len(work) > MAX_TEXT or len(results) > MAX_TEXT or len(links) > MAX_LINKS:
        errors["work"] = f"每项内容不超过 {MAX_TEXT} 字，链接不超过 {MAX_LINKS} 字"
    bad = [u for u in links.split() if not u.startswith(("https://", "http://"))]
    if bad:
        errors["links"] = "相关链接须以 http:// 或 https:// 开头，每行一个"
    if errors:
        raise InvalidInput("使用情况报告不完整或有误：" + "；".join(errors.values()), fields=errors)
    return ReportForm(work, results, links)


def _point(db: Session, grant: Grant, number: int, today: date) -> ReportPoint:
    reports = _reports_by_grant(db, [grant.id])[grant.id]
    for point in schedule(grant, reports, today):
        if point.number == number:
            return point
    raise NotFound("该授权没有这个报告时点")


def file_report(
    db: Session,
    actor: Actor,
    grant_id: int,
    number: int,
    form: ReportForm,
    today: date | None = None,
    attachment: Attachment | None = None,
) -> UseReport:
    """The grantee files the report for one reporting point (again after 需补充). A point opens
    DUE_SOON_DAYS before it is due and stays open after: a late report is still a report."""
    grant, provider_id = get_grant(db, actor, grant_id)
    require(actor.user_id == grant.user_id, "只有被授权人可以提交使用情况报告")
    day = today or city_today()
    point = _point(db, grant, number, day)
    if point.state == "upcoming":
        raise Conflict(f"该报告时点为 {point.due_on.isoformat()}，到期前 {DUE_SOON_DAYS} 日起可以提交")
    if point.state in ("submitted", "accepted"):
        raise Conflict("该时点的报告已提交" + ("，正在审阅" if point.state == "submitted" else "并已认可"))
    clean = _clean(form)
    if attachment is not None and not attachment_allowed(attachment.name):
        kinds = "、".join(ATTACHMENT_TYPES)
        raise InvalidInput(f"附件须为以下格式之一：{kinds}", fields={"attachment": "附件格式不支持"})
    report = point.report or UseReport(grant_id=grant.id, point=number, due_on=point.due_on)
    before = {"work": report.work, "results": report.results} if point.report else None
    report.work, report.results, report.links = clean.work, clean.results, clean.links
    if attachment is not None:  # a report filed again without a file keeps the earlier one
        report.attachment_key, report.attachment_name = attachment.key, attachment.name
        report.attachment_size = attachment.size
    report.status, report.submitted_by, report.submitted_at = ReportStatus.submitted, grant.user_id, utcnow()
    db.add(report)
    db.flush()
    record(
        db,
        actor,
        Tag.access_report_filed,
        "use_report",
        report.id,
        summary={
            "before": before,
            "after": {"grant_id": grant.id, "point": number, "late": day > point.due_on},
        },
    )
    notify(
        db,
        provider_staff(db, provider_id),
        f"使用情况报告待审阅：授权 {grant.id} 第 {number} 期",
        f"被授权人已提交“{grant.entry.title}”的第 {number} 期使用情况报告，请审阅。",
        f"/grants/{grant.id}",
    )
    return report


def get_report(db: Session, actor: Actor, report_id: int) -> tuple[UseReport, Grant, int]:
    """A report with its grant and provider, for whoever may see the grant."""
    require_login(actor)
    report = db.get(UseReport, report_id) if 0 < report_id <= MAX_ID else None
    if report is None:
        raise NotFound("未找到该使用情况报告")
    grant, provider_id = get_grant(db, actor, report.grant_id)
    return report, grant, provider_id


def review_report(db: Session, actor: Actor, report_id: int, accepted: bool, note: str) -> UseReport:
    """The provider's reviewer accepts a report, or asks for more with a note saying what."""
    report, grant, provider_id = get_report(db, actor, report_id)
    require_org_role(actor, provider_id, OrgRole.reviewer)
    require(actor.user_id != grant.user_id, "不能审阅本人提交的报告")
    if report.status != ReportStatus.submitted:
        raise Conflict("该报告已审阅，待被授权人补充后可再次审阅")
    note = (note or "").strip()
    if not accepted and len(note) < 4:
        raise InvalidInput("请说明需要补充的内容", fields={"note": "请说明需要补充的内容"})
    report.status = ReportStatus.accepted if accepted else ReportStatus.needs_more
    report.reviewed_by, report.reviewed_at, report.review_note = actor.user_id, utcnow(), note[:MAX_TEXT]
    record(
        db,
        actor,
        Tag.access_report_reviewed,
        "use_report",
        report.id,
        summary={"after": {"status": report.status}},
        comment=note,
    )
    verdict = "已认可" if accepted else "需补充：" + note
    notify(
        db,
        [grant.user_id],
        f"使用情况报告审阅结果：第 {report.point} 期{'已认可' if accepted else '需补充'}",
        f"您提交的“{grant.entry.title}”第 {report.point} 期使用情况报告{verdict}",
        f"/grants/{grant.id}",
    )
    return report


@dataclass
class CheckForm:
    checked_on: str = ""  # YYYY-MM-DD
    method: str = ""  # 核查方式
    finding: str = ""  # 核查发现
    conclusion: str = ""  # compliant | non_compliant
    follow_up: str = ""  # 后续措施


def _check_date(value: str, today: date, errors: dict[str, str]) -> date:
    try:
        day = date.fromisoformat((value or "").strip())
    except ValueError:
        errors["checked_on"] = "请填写核查日期（如 2026-11-27）"
        return today
    if day > today:
        errors["checked_on"] = "核查日期不能晚于今天"
    return day


def record_check(
    db: Session, actor: Actor, grant_id: int, form: CheckForm, today: date | None = None
) -> ComplianceCheck:
    """The provider's reviewer records one compliance check of a grant (date, method, finding,
    conclusion, follow-up); a 不合规 conclusion must say what follows."""
    grant, provider_id = get_grant(db, actor, grant_id)
    require_org_role(actor, provider_id, OrgRole.reviewer)
    errors: dict[str, str] = {}
    checked_on = _check_date(form.checked_on, today or city_today(), errors)
    method, finding = (form.method or "").strip(), (form.finding or "").strip()
    follow_up = (form.follow_up or "").strip()
    if not 2 <= len(method) <= 200:
        errors["method"] = "请填写核查方式（如：查阅使用报告、现场检查）"
    if not 4 <= len(finding) <= MAX_TEXT:
        errors["finding"] = "请填写核查发现"
    if form.conclusion not in set(Conclusion):
        errors["conclusion"] = "请选择核查结论：合规或不合规"
    elif form.conclusion == Conclusion.non_compliant and len(follow_up) < 4:
        errors["follow_up"] = "结论为不合规的，请填写后续措施"
    if errors:
        raise InvalidInput("核查记录不完整或有误：" + "；".join(errors.values()), fields=errors)
    check = ComplianceCheck(
        grant_id=grant.id,
        checked_on=checked_on,
        method=method,
        finding=finding,
        conclusion=form.conclusion,
        follow_up=follow_up[:MAX_TEXT],
        recorded_by=actor.user_id,
    )
    db.add(check)
    db.flush()
    record(
        db,
        actor,
        Tag.access_compliance_recorded,
        "compliance_check",
        check.id,
        summary={"after": {"grant_id": grant.id, "checked_on": checked_on, "conclusion": check.conclusion}},
    )
    notify(
        db,
        [grant.user_id],
        f"履约核查结果：授权 {grant.id}",
        f"提供单位于 {checked_on.isoformat()} 核查了您对“{grant.entry.title}”的使用情况，"
        f"结论：{'合规' if check.conclusion == Conclusion.compliant else '不合规'}。",
        f"/grants/{grant.id}",
    )
    return check
