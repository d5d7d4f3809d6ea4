"""Response-time statistics of 有条件开放 applications per provider, for the regulator (Art. 10, 32).

Hours run from acceptance (受理) to decision (approval or refusal). The median and the 90th
percentile interpolate linearly between ranks (as PostgreSQL's `percentile_cont` does). A decision
is within the deadline when it falls, in city time, on or before `due_on`. Due-soon applications are
accepted and undecided with their due date today or on the next working day; overdue ones are past
it. `overdue_counts` is what the provider evaluation reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from kaifang.access.grants import CITY_ZONE, city_today
from kaifang.access.models import Application, ApplicationStatus
from kaifang.access.workdays import load_calendar
from kaifang.accounts.models import Organisation
from kaifang.accounts.permissions import Actor, require, require_login


def percentile(values: list[float], share: float) -> float | None:
    """Linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * share
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class ProviderStats:
    """One provider's figures; `due_soon` and `overdue` are the applications themselves."""

    provider_id: int
    provider_name: str
    received: int = 0
    accepted: int = 0
    decided: int = 0
    decided_in_time: int = 0
    hours: list[float] = field(default_factory=list)
    due_soon: list[Application] = field(default_factory=list)
    overdue: list[Application] = field(default_factory=list)

    @property
    def median_hours(self) -> float | None:
        return percentile(self.hours, 0.5)

    @property
    def p90_hours(self) -> float | None:
        return percentile(self.hours, 0.9)

    @property
    def in_time_share(self) -> float | None:
        """Decided on or before the due date, of all decided (None before the first decision)."""
        return self.decided_in_time / self.decided if self.decided else None


def _due_soon_until(db: Session, today: date) -> date:
    """The next working day: an application due from today to then is due soon."""
    return load_calendar(db).working_days_after(today, 1)


def _add(stats: ProviderStats, a: Application, today: date, soon_until: date) -> None:
    stats.received += 1
    if a.accepted_at is None:
        return
    stats.accepted += 1
    if a.decided_at is not None:
        stats.decided += 1
        stats.hours.append((a.decided_at - a.accepted_at).total_seconds() / 3600)
        if a.due_on is not None and a.decided_at.astimezone(CITY_ZONE).date() <= a.due_on:
            stats.decided_in_time += 1
    elif a.status == ApplicationStatus.accepted and a.due_on is not None:
        if today > a.due_on:
            stats.overdue.append(a)
        elif a.due_on <= soon_until:
            stats.due_soon.append(a)


def compute(db: Session, today: date | None = None) -> list[ProviderStats]:
    """Figures for every provider that received an application, by name. No permission check:
    callers are `provider_stats` and the evaluation."""
    day = today or city_today()
    soon_until = _due_soon_until(db, day)
    names = {org_id: name for org_id, name in db.execute(select(Organisation.id, Organisation.name))}
    stats: dict[int, ProviderStats] = {}
    query = select(Application).options(selectinload(Application.entry)).order_by(Application.id)
    for a in db.scalars(query):
        entry = stats.setdefault(a.provider_id, ProviderStats(a.provider_id, names.get(a.provider_id, "")))
        _add(entry, a, day, soon_until)
    return sorted(stats.values(), key=lambda s: s.provider_name)


def provider_stats(db: Session, actor: Actor, today: date | None = None) -> list[ProviderStats]:
    """The regulator's (and the operator's) view of every provider's response times."""
    require_login(actor)
    require(actor.is_supervisor, "此页面仅限市互联网信息主管部门和市大数据管理中心")
    return compute(db, today)


@dataclass(frozen=True)
class OverdueCount:
    """Late answers of one provider: still undecided past the due date, and decided after it."""

    pending: int = 0
    decided_late: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.decided_late


def overdue_counts(db: Session, today: date | None = None) -> dict[int, OverdueCount]:
    """provider id -> its overdue answers, for the provider evaluation (Art. 32)."""
    return {
        s.provider_id: OverdueCount(len(s.overdue), s.decided - s.decided_in_time) for s in compute(db, today)
    }
