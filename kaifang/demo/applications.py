"""有条件开放 applications in the demo city, one in every state, walked through the real service
functions (so the agreements, grants, audit records and notifications are real), then moved back in
time where a state needs it: an overdue decision, an expired grant, a report coming due.

Runs after the demo resources are published: an application names published resources.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.access import reports, service, suspension
from kaifang.access.grants import CITY_ZONE, city_today
from kaifang.access.models import Application, Grant
from kaifang.access.workdays import due_date, load_calendar
from kaifang.accounts.models import User
from kaifang.accounts.permissions import Actor
from kaifang.accounts.service import actor_for
from kaifang.datastore.models import Resource
from kaifang.db import Database

RESOURCE = "车站日客流"  # the demo's 有条件开放 table (轨道交通客流统计数据, 市交通运输委员会)
REVIEWER = "jtw-reviewer"

FORMS = {
    "demo-user": ("研究地铁站点客流与周边公共服务设施布局的关系，撰写课程论文", "高校课程研究", 90),
    "citizen-lin": ("分析工作日早晚高峰各线路进出站客流特征，完成毕业设计", "本科毕业设计", 60),
    "demo-lab": ("编制轨道交通线网规划客流预测模型的基础数据", "交通规划设计", 180),
    "demo-community": ("制作面向公众的地铁站点拥挤度可视化科普作品", "公益数据可视化", 30),
    "demo-studio": ("研究节假日地铁客流变化规律，为大型活动疏散方案提供参考", "城市大型活动保障研究", 60),
    "demo-company": ("优化出行服务应用中的换乘推荐，按站点时段客流估计拥挤程度", "出行服务产品研发", 365),
    "citizen-zhao": ("个人研究地铁客流与房价的关系", "个人研究", 180),
}


def _day_to_utc(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), CITY_ZONE)


class _Walk:
    """One session and the actors the demo acts as."""

    def __init__(self, db: Session, entry_id: int, resource_ids: list[int]) -> None:
        self.db, self.entry_id, self.resource_ids = db, entry_id, resource_ids
        self.today = city_today()

    def actor(self, username: str) -> Actor:
        return actor_for(self.db, self.db.scalars(select(User).where(User.username == username)).one())

    def apply(self, username: str) -> Application:
        purpose, scenario, days = FORMS[username]
        form = service.ApplicationForm(
            purpose=purpose,
            scenario=scenario,
            period_days=days,
            security_measures="数据存放于单位内网服务器，设专人管理访问权限，不对外提供，使用期满后删除",
            contact=f"{username}@example.com",
            resource_ids=self.resource_ids,
        )
        return service.apply(self.db, self.actor(username), self.entry_id, form)

    def accepted(self, username: str, on: date) -> Application:
        """Applied and accepted on a past day (the due date counted from that day)."""
        application = self.apply(username)
        service.accept(self.db, self.actor(REVIEWER), application.id)
        application.submitted_at = _day_to_utc(on, 9)
        application.accepted_at = _day_to_utc(on)
        application.due_on = due_date(load_calendar(self.db), on).day
        return application

    def granted(self, username: str, started: date) -> Grant:
        """Through approval and both signatures; the term moved to start on `started`."""
        application = self.accepted(username, started - timedelta(days=3))
        agreement = service.approve(self.db, self.actor(REVIEWER), application.id)
        application.decided_at = _day_to_utc(started - timedelta(days=2))
        for who in (username, REVIEWER):
            service.sign(self.db, self.actor(who), application.id, agreement.sha256)
        grant = self.db.scalars(select(Grant).where(Grant.application_id == application.id)).one()
        grant.starts_on, grant.ends_on = started, started + timedelta(days=application.period_days)
        return grant

    def due_soon_day(self) -> date:
        """A past acceptance day whose due date is today or the next working day."""
        calendar = load_calendar(self.db)
        until = calendar.working_days_after(self.today, 1)
        day = self.today
        while not self.today <= due_date(calendar, day).day <= until:
            day -= timedelta(days=1)
        return day

    def overdue_day(self) -> date:
        """An acceptance day whose due date has passed."""
        calendar = load_calendar(self.db)
        day = self.today - timedelta(days=5)
        while due_date(calendar, day).day >= self.today:
            day -= timedelta(days=1)
        return day


def _walk(w: _Walk) -> None:
    reviewer = w.actor(REVIEWER)
    today = w.today
    # finished ones first: a user holds one open application per entry at a time
    refused = w.accepted("demo-user", today - timedelta(days=120))
    service.refuse(
        w.db,
        reviewer,
        refused.id,
        "申请用途为课程论文，所申请的车站分时段明细超出研究所需，可使用无条件开放的线路日客流汇总数据",
        "《海河市公共数据开放管理办法》第十条；本单位有条件开放数据目录“轨道交通客流统计数据”的开放条件",
    )
    refused.decided_at = _day_to_utc(today - timedelta(days=119))
    w.granted("demo-user", today - timedelta(days=100))  # 90 days: expired ten days ago
    revoked = w.granted("citizen-lin", today - timedelta(days=40))
    reason = "履约核查发现在公开网站发布了车站分时段客流明细，违反协议禁止再转让的约定"
    service.revoke_grant(w.db, reviewer, revoked.id, reason)

    w.apply("citizen-lin")  # 待受理
    returned = w.apply("demo-lab")
    service.return_for_completion(w.db, reviewer, returned.id, "请补充研究方案和单位出具的数据安全承诺书")
    w.accepted("demo-community", w.due_soon_day())  # 即将到期
    w.accepted("demo-studio", w.overdue_day())  # 已逾期
    approved = w.accepted("demo-user", today - timedelta(days=2))
    service.approve(w.db, reviewer, approved.id)  # 已批准，待签订
    approved.decided_at = _day_to_utc(today - timedelta(days=1))
    w.granted("demo-company", today - timedelta(days=75))  # first report due in two weeks

    frozen = w.granted("citizen-zhao", today - timedelta(days=40))
    check = reports.CheckForm(
        checked_on=(today - timedelta(days=5)).isoformat(),
        method="调阅访问记录并核对网络公开信息",
        finding="发现其个人网站公开出售车站分时段客流数据副本",
        conclusion="non_compliant",
        follow_up="提出暂停服务，并要求删除公开的数据副本",
    )
    reports.record_check(w.db, reviewer, frozen.id, check)
    proposal = suspension.propose(
        w.db,
        reviewer,
        provider_of(w, frozen),
        frozen.user_id,
        "违反使用协议第六条（禁止再转让），在个人网站出售协议数据副本",
        f"履约核查记录（{check.checked_on}）：个人网站公开出售车站分时段客流数据副本",
    )
    suspension.confirm(w.db, w.actor("demo-operator"), proposal.id, "已与市交通运输委员会核实")


def provider_of(w: _Walk, grant: Grant) -> int:
    """The provider of a grant's application."""
    query = select(Application.provider_id).where(Application.id == grant.application_id)
    return int(w.db.scalars(query).one())


def seed_applications(database: Database, report: Callable[[str], None] = print) -> int:
    """Walk the demo applications; returns how many there are."""
    with database.session() as db:
        resource = db.scalars(select(Resource).where(Resource.name == RESOURCE)).one()
        _walk(_Walk(db, resource.entry_id, [resource.id]))
        count = len(list(db.scalars(select(Application.id))))
    report(f"已载入 {count} 份有条件开放申请（各办理状态各一，含逾期未答复、逾期未报和暂停服务的用户）")
    return count
