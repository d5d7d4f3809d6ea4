"""Access statistics of a provider's own entries, from the audit log: page views, downloads, API
calls and distinct users, per entry and per day (Beijing time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor, require, require_login
from kaifang.audit.models import AuditRecord, RecordKind
from kaifang.audit.tags import Tag
from kaifang.catalog.models import Entry

CITY_ZONE = ZoneInfo("Asia/Shanghai")
MEASURES = ("views", "downloads", "api_calls")
_MEASURE_OF = {
    str(Tag.data_access_download): "downloads",
    str(Tag.data_access_query): "api_calls",
    str(Tag.data_access_sql): "api_calls",
}
ENTRY_PAGE = "/datasets/{entry_id}"


@dataclass
class EntryStats:
    entry_id: int
    title: str
    views: int = 0
    downloads: int = 0
    api_calls: int = 0
    users: set[str] = field(default_factory=set)  # "u<id>" for users, "ip<address>" for anonymous visitors

    @property
    def distinct_users(self) -> int:
        return len(self.users)


@dataclass
class ProviderStats:
    days: list[date]
    entries: list[EntryStats]  # most viewed first
    by_day: dict[str, list[int]]  # measure -> one count per day
    distinct_users: int


def provider_stats(
    db: Session, actor: Actor, org_id: int, days: int = 30, today: date | None = None
) -> ProviderStats:
    """The last `days` days of use of the organisation's entries: for its staff and the supervisors."""
    require_login(actor)
    require(actor.is_member(org_id) or actor.is_supervisor, "仅本单位人员和主管部门可查看访问统计")
    last = today or datetime.now(CITY_ZONE).date()
    span = [last - timedelta(days=n) for n in range(days - 1, -1, -1)]
    since = datetime.combine(span[0], time(), CITY_ZONE)
    titles = {
        row.id: row.title
        for row in db.execute(select(Entry.id, Entry.title).where(Entry.provider_id == org_id))
    }
    per_entry = {entry_id: EntryStats(entry_id, title) for entry_id, title in titles.items()}
    by_day = {measure: [0] * days for measure in MEASURES}
    everyone: set[str] = set()
    rows = db.execute(
        select(
            AuditRecord.at,
            AuditRecord.entry_id,
            AuditRecord.kind,
            AuditRecord.action,
            AuditRecord.actor_id,
            AuditRecord.ip,
        )
        .where(
            AuditRecord.entry_id.in_(list(titles)),
            AuditRecord.at >= since,
            or_(
                AuditRecord.kind == RecordKind.access,
                (AuditRecord.route == ENTRY_PAGE)
                & (AuditRecord.method == "GET")
                & (AuditRecord.status == 200),
            ),
        )
        .execution_options(yield_per=5000)
    )
    for at, entry_id, kind, action, actor_id, ip in rows:
        measure = "views" if kind == RecordKind.request else _MEASURE_OF.get(action)
        if measure is None or entry_id is None:  # previews count as the page views they belong to
            continue
        stats = per_entry[entry_id]
        setattr(stats, measure, getattr(stats, measure) + 1)
        who = f"u{actor_id}" if actor_id is not None else f"ip{ip}"
        stats.users.add(who)
        everyone.add(who)
        index = (at.astimezone(CITY_ZONE).date() - span[0]).days
        if 0 <= index < days:
            by_day[measure][index] += 1
    ranked = sorted(per_entry.values(), key=lambda s: (-s.views, -s.downloads, -s.api_calls, s.entry_id))
    return ProviderStats(span, ranked, by_day, len(everyone))
