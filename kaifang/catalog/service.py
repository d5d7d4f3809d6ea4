"""Catalog entries and their confirmation workflow (Art. 7, 9, 14, 15). No HTTP in here.

An entry moves draft → submitted → confirmed (or returned with reasons) → published → retired.
A change to a published entry's catalog fields is held in ``pending`` and goes through the same
submit/confirm/publish steps while the published fields stay visible.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from kaifang.accounts.models import Organisation, OrgRole
from kaifang.accounts.permissions import Actor, require, require_login, require_org_role, require_regulator
from kaifang.audit.models import AuditRecord
from kaifang.audit.service import diff, record, records_for
from kaifang.audit.tags import Tag
from kaifang.catalog import search
from kaifang.catalog.models import (
    ACCESS_METHOD_LABELS,
    CATALOG_FIELDS,
    FORMATS,
    FREQUENCY_LABELS,
    Entry,
    EntryStatus,
    OpenType,
    TaxonomyKind,
    TaxonomyTerm,
)
from kaifang.catalog.vocabulary import ensure_default_vocabulary
from kaifang.db import MAX_ID, utcnow
from kaifang.errors import Conflict, InvalidInput, NotFound

LIST_FIELDS = ("keywords", "access_methods", "formats")
DATE_FIELDS = ("temporal_start", "temporal_end", "next_review_date")
MAX_LENGTHS = {
    "title": 200,
    "contact_name": 100,
    "contact_phone": 50,
    "contact_email": 254,
    "spatial_coverage": 200,
}


# --- visibility ---------------------------------------------------------------------------------


def can_view(actor: Actor, entry: Entry) -> bool:
    """Published open entries are public; everything else only to its provider and the supervisors.

    不予开放 entries are never public, even when published (Art. 7).
    """
    if entry.status == EntryStatus.published and entry.open_type != OpenType.closed:
        return True
    return actor.is_supervisor or actor.is_member(entry.provider_id)


def get_entry(db: Session, actor: Actor, entry_id: int) -> Entry:
    entry = None
    if 0 < entry_id <= MAX_ID:
        entry = db.scalar(select(Entry).where(Entry.id == entry_id).options(joinedload(Entry.provider)))
    if entry is None or not can_view(actor, entry):
        # The same answer for "absent" and "not yours": existence of hidden entries is not disclosed.
        raise NotFound("未找到该数据目录，可能尚未发布或已下线")
    return entry


# --- field cleaning -----------------------------------------------------------------------------


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[,，;；、\s]+", value)
    if not isinstance(value, list | tuple):
        raise TypeError
    out: list[str] = []
    for v in value:
        v = str(v).strip()
        if v and v not in out:
            out.append(v)
    return out


def _as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip())


def _term_codes(db: Session, kind: TaxonomyKind) -> set[str]:
    return set(
        db.scalars(
            select(TaxonomyTerm.code).where(TaxonomyTerm.kind == kind, TaxonomyTerm.is_active.is_(True))
        )
    )


def clean_fields(db: Session, data: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Types and vocabularies of the given catalog fields; unknown keys are refused.

    A term the regulator has since deactivated stays acceptable for an entry that already uses it
    (`current`), so saving an unrelated change does not force a reclassification.
    """
    unknown = set(data) - set(CATALOG_FIELDS)
    if unknown:
        raise InvalidInput("包含无法识别的字段：" + "、".join(sorted(unknown)))
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, value in data.items():
        try:
            if key in LIST_FIELDS:
                clean[key] = _as_list(value)
            elif key in DATE_FIELDS:
                clean[key] = _as_date(value)
            else:
                clean[key] = "" if value is None else str(value).strip()
        except (TypeError, ValueError):
            errors[key] = "日期格式应为 YYYY-MM-DD" if key in DATE_FIELDS else "格式不正确"
    for key, limit in MAX_LENGTHS.items():
        if len(clean.get(key) or "") > limit:
            errors[key] = f"不超过 {limit} 个字符"
    vocab: dict[str, set[str]] = {
        "open_type": set(OpenType),
        "update_frequency": set(FREQUENCY_LABELS),
        "theme": _term_codes(db, TaxonomyKind.theme),
        "industry": _term_codes(db, TaxonomyKind.industry),
        "grade": _term_codes(db, TaxonomyKind.grade),
    }
    for key in ("theme", "industry", "grade"):
        if current and current.get(key):
            vocab[key].add(current[key])
    for key, allowed in vocab.items():
        if clean.get(key) and clean[key] not in allowed:
            errors[key] = "不在可选范围内"
    if bad := set(clean.get("access_methods", [])) - set(ACCESS_METHOD_LABELS):
        errors["access_methods"] = "开放方式只能是文件下载或接口调用：" + "、".join(sorted(bad))
    if "formats" in clean:
        by_upper = {f.upper(): f for f in FORMATS}
        unknown_formats = [f for f in clean["formats"] if f.upper() not in by_upper]
        if unknown_formats:
            errors["formats"] = "不支持的数据格式：" + "、".join(unknown_formats)
        clean["formats"] = [by_upper.get(f.upper(), f) for f in clean["formats"]]
    if len(clean.get("keywords", [])) > 20:
        errors["keywords"] = "关键词不超过 20 个"
    if errors:
        raise InvalidInput("目录信息有误，请按提示修改", fields=errors)
    return clean


def completeness_errors(fields: dict[str, Any]) -> dict[str, str]:
    """What an entry lacks before it can be submitted for confirmation (Art. 7, 10, 14)."""
    errors: dict[str, str] = {}
    required = {
        "title": "数据集名称",
        "summary": "摘要",
        "theme": "主题分类",
        "industry": "行业分类",
        "grade": "数据分级",
        "open_type": "开放类型",
        "update_frequency": "更新频率",
        "contact_name": "联系人",
        "contact_phone": "联系电话",
    }
    for key, label in required.items():
        if not fields.get(key):
            errors[key] = f"请填写{label}"
    if not fields.get("keywords"):
        errors["keywords"] = "请至少填写一个关键词"
    open_type = fields.get("open_type")
    if open_type == OpenType.closed:
        for key, label in (
            ("closed_reason", "不予开放理由"),
            ("closed_legal_basis", "法律依据"),
            ("next_review_date", "下次评估审查日期"),
        ):
            if not fields.get(key):
                errors[key] = f"不予开放的目录须填写{label}"
        review = fields.get("next_review_date")
        if isinstance(review, date) and review <= date.today():
            errors["next_review_date"] = "下次评估审查日期应晚于今天"
    else:
        if not fields.get("access_methods"):
            errors["access_methods"] = "请选择至少一种开放方式"
        if not fields.get("formats"):
            errors["formats"] = "请选择至少一种数据格式"
        if open_type == OpenType.conditional and not fields.get("open_conditions"):
            errors["open_conditions"] = "有条件开放的目录须写明开放条件"
    start, end = fields.get("temporal_start"), fields.get("temporal_end")
    if isinstance(start, date) and isinstance(end, date) and start > end:
        errors["temporal_end"] = "时间范围的结束日期不能早于开始日期"
    return errors


def live_fields(entry: Entry) -> dict[str, Any]:
    return {k: getattr(entry, k) for k in CATALOG_FIELDS}


def proposed_fields(entry: Entry) -> dict[str, Any]:
    """The fields the provider is working on: the pending change if there is one, else the live ones."""
    fields = live_fields(entry)
    if entry.pending:
        fields.update({k: (_as_date(v) if k in DATE_FIELDS else v) for k, v in entry.pending.items()})
    return fields


def _serialisable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in fields.items()}


# --- provider actions ---------------------------------------------------------------------------


def create_entry(db: Session, actor: Actor, provider_id: int, data: dict[str, Any]) -> Entry:
    """A publisher of the provider creates a draft entry; only the title is needed at this point."""
    require_org_role(actor, provider_id, OrgRole.publisher)
    org = db.get(Organisation, provider_id)
    if org is None or not org.is_active:
        raise NotFound("未找到该单位")
    fields = clean_fields(db, data)
    if not fields.get("title"):
        raise InvalidInput("请填写数据集名称", fields={"title": "请填写数据集名称"})
    entry = Entry(provider_id=provider_id, created_by=actor.user_id, status=EntryStatus.draft, **fields)
    db.add(entry)
    db.flush()
    search.index_entry(db, entry)
    record(db, actor, Tag.catalog_entry_created, "entry", entry.id, summary=diff({}, _serialisable(fields)))
    return entry


def _entry_for_publisher(db: Session, actor: Actor, entry_id: int) -> Entry:
    require_login(actor)
    entry = get_entry(db, actor, entry_id)
    require_org_role(actor, entry.provider_id, OrgRole.publisher)
    return entry


def edit_entry(db: Session, actor: Actor, entry_id: int, data: dict[str, Any]) -> Entry:
    """Edit the catalog fields. A published entry keeps its live fields; the edit becomes a pending change."""
    entry = _entry_for_publisher(db, actor, entry_id)
    changes = clean_fields(db, data, proposed_fields(entry))
    if "title" in changes and not changes["title"]:
        raise InvalidInput("数据集名称不能为空", fields={"title": "请填写数据集名称"})
    if entry.status == EntryStatus.submitted or entry.pending_status == EntryStatus.submitted:
        raise Conflict("该目录正在等待主管部门确认，确认或退回后才能修改")
    if entry.status == EntryStatus.retired:
        raise Conflict("已下线的目录不能修改")
    before = proposed_fields(entry)
    after = {**before, **changes}
    if after == before:  # saving an unchanged form changes nothing and records nothing
        return entry
    if entry.status == EntryStatus.published:
        entry.pending = _serialisable({k: v for k, v in after.items() if v != getattr(entry, k)}) or None
        entry.pending_status = EntryStatus.draft if entry.pending else None
    else:
        for k, v in changes.items():
            setattr(entry, k, v)
        if entry.status == EntryStatus.confirmed:
            entry.status = EntryStatus.draft  # what the regulator confirmed is no longer what it is
        search.index_entry(db, entry)
    entry.updated_at = utcnow()
    record(
        db,
        actor,
        Tag.catalog_entry_edited,
        "entry",
        entry.id,
        summary=diff(_serialisable(before), _serialisable(after)),
    )
    return entry


def discard_change(db: Session, actor: Actor, entry_id: int) -> Entry:
    """Drop a pending change to a published entry that is not under review."""
    entry = _entry_for_publisher(db, actor, entry_id)
    if not entry.pending or entry.pending_status == EntryStatus.submitted:
        raise Conflict("没有可撤销的修改，或修改正在等待确认")
    record(
        db,
        actor,
        Tag.catalog_entry_edited,
        "entry",
        entry.id,
        comment="撤销未发布的修改",
        summary={"before": entry.pending, "after": {}},
    )
    entry.pending, entry.pending_status = None, None
    return entry


def _transition(
    db: Session,
    actor: Actor,
    entry: Entry,
    tag: Tag,
    comment: str,
    *,
    live: str | None = None,
    pending: str | None = None,
) -> Entry:
    before = {"status": entry.status, "pending_status": entry.pending_status}
    if live is not None:
        entry.status = live
    if pending is not None:
        entry.pending_status = pending or None
    entry.updated_at = utcnow()
    after = {"status": entry.status, "pending_status": entry.pending_status}
    search.touch_catalog(db)
    record(db, actor, tag, "entry", entry.id, summary=diff(before, after), comment=comment)
    return entry


def _has_change(entry: Entry, state: str | tuple[str, ...]) -> bool:
    states = (state,) if isinstance(state, str) else state
    return entry.status == EntryStatus.published and bool(entry.pending) and entry.pending_status in states


def submit_entry(db: Session, actor: Actor, entry_id: int, comment: str = "") -> Entry:
    """Send a draft, a returned entry or a change to a published entry to the regulator."""
    entry = _entry_for_publisher(db, actor, entry_id)
    errors = completeness_errors(proposed_fields(entry))
    if errors:
        raise InvalidInput("目录信息不完整，补充后才能提交确认", fields=errors)
    if entry.status in (EntryStatus.draft, EntryStatus.returned):
        return _transition(db, actor, entry, Tag.catalog_entry_submitted, comment, live=EntryStatus.submitted)
    if _has_change(entry, (EntryStatus.draft, EntryStatus.returned)):
        return _transition(
            db, actor, entry, Tag.catalog_entry_submitted, comment, pending=EntryStatus.submitted
        )
    raise Conflict("当前状态不能提交确认：只有草稿、已退回的目录或已发布目录的修改可以提交")


def confirmation_queue(db: Session, actor: Actor) -> list[Entry]:
    """Entries and changes waiting for the regulator, oldest first."""
    require_regulator(actor)
    return list(
        db.scalars(
            select(Entry)
            .options(joinedload(Entry.provider))
            .where((Entry.status == EntryStatus.submitted) | (Entry.pending_status == EntryStatus.submitted))
            .order_by(Entry.updated_at)
        )
    )


def confirm_entry(db: Session, actor: Actor, entry_id: int, comment: str = "") -> Entry:
    """The regulator confirms an entry (or a change) as conforming to policy and standards (Art. 14)."""
    require_regulator(actor)
    entry = get_entry(db, actor, entry_id)
    if entry.status == EntryStatus.submitted:
        entry.confirmed_at = utcnow()
        entry.return_reason = ""
        return _transition(db, actor, entry, Tag.catalog_entry_confirmed, comment, live=EntryStatus.confirmed)
    if _has_change(entry, EntryStatus.submitted):
        entry.return_reason = ""
        return _transition(
            db, actor, entry, Tag.catalog_entry_confirmed, comment, pending=EntryStatus.confirmed
        )
    raise Conflict("只有待确认的目录可以确认")


def return_entry(db: Session, actor: Actor, entry_id: int, reason: str) -> Entry:
    """The regulator returns an entry (or a change) to its provider; the reasons are required."""
    require_regulator(actor)
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise InvalidInput("退回时必须写明理由", fields={"reason": "请填写退回理由"})
    entry = get_entry(db, actor, entry_id)
    if entry.status == EntryStatus.submitted:
        entry.return_reason = reason
        return _transition(db, actor, entry, Tag.catalog_entry_returned, reason, live=EntryStatus.returned)
    if _has_change(entry, EntryStatus.submitted):
        entry.return_reason = reason
        return _transition(db, actor, entry, Tag.catalog_entry_returned, reason, pending=EntryStatus.returned)
    raise Conflict("只有待确认的目录可以退回")


def publish_entry(db: Session, actor: Actor, entry_id: int, comment: str = "") -> Entry:
    """Publish a confirmed entry, or put a confirmed change to a published entry live."""
    entry = _entry_for_publisher(db, actor, entry_id)
    now = utcnow()
    if entry.status == EntryStatus.confirmed:
        entry.published_at = entry.published_at or now
        entry.last_published_at = now
        _transition(db, actor, entry, Tag.catalog_entry_published, comment, live=EntryStatus.published)
    elif _has_change(entry, EntryStatus.confirmed):
        before = live_fields(entry)
        for k, v in proposed_fields(entry).items():
            setattr(entry, k, v)
        entry.pending = None
        entry.last_published_at = now
        _transition(db, actor, entry, Tag.catalog_entry_published, comment or "发布已确认的修改", pending="")
        record(
            db,
            actor,
            Tag.catalog_entry_edited,
            "entry",
            entry.id,
            comment="已确认的修改生效",
            summary=diff(_serialisable(before), _serialisable(live_fields(entry))),
        )
    else:
        raise Conflict("只有经主管部门确认的目录或修改可以发布")
    search.index_entry(db, entry)
    return entry


def retire_entry(db: Session, actor: Actor, entry_id: int, reason: str) -> Entry:
    """Take a published entry off the open catalog; the reason is kept in its history."""
    entry = _entry_for_publisher(db, actor, entry_id)
    if entry.status != EntryStatus.published:
        raise Conflict("只有已发布的目录可以下线")
    if len((reason or "").strip()) < 2:
        raise InvalidInput("下线时请写明原因", fields={"reason": "请填写下线原因"})
    entry.retired_at = utcnow()
    entry.pending, entry.pending_status = None, None
    return _transition(db, actor, entry, Tag.catalog_entry_retired, reason.strip(), live=EntryStatus.retired)


def entry_history(db: Session, actor: Actor, entry_id: int) -> list[AuditRecord]:
    """Every recorded state change of an entry: for its provider's staff and the supervisors."""
    require_login(actor)
    entry = get_entry(db, actor, entry_id)
    require(actor.is_supervisor or actor.is_member(entry.provider_id), "仅提供单位和主管部门可查看流转记录")
    return records_for(db, "entry", entry.id)


def provider_entries(db: Session, actor: Actor, provider_id: int, status: str | None = None) -> list[Entry]:
    """The workspace list: every entry of the provider, in every state."""
    require_login(actor)
    require(actor.is_member(provider_id) or actor.is_supervisor, "仅本单位人员可查看本单位目录")
    query = select(Entry).where(Entry.provider_id == provider_id).order_by(Entry.updated_at.desc())
    if status:
        query = query.where((Entry.status == status) | (Entry.pending_status == status))
    return list(db.scalars(query))


def all_entries(
    db: Session,
    actor: Actor,
    status: str | None = None,
    provider_id: int | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Entry], int]:
    """One page of every entry in every state, newest change first, and the total (supervisors)."""
    require_login(actor)
    require(actor.is_supervisor, "仅运营和主管部门可查看全部目录")
    query = select(Entry)
    if status:
        query = query.where(Entry.status == status)
    if provider_id:
        query = query.where(Entry.provider_id == provider_id)
    total = db.scalar(query.with_only_columns(func.count()).select_from(Entry)) or 0
    page = query.options(joinedload(Entry.provider)).order_by(Entry.updated_at.desc(), Entry.id.desc())
    return list(db.scalars(page.offset(offset).limit(limit))), total


def entry_counts(db: Session, actor: Actor) -> tuple[dict[str, int], int]:
    """Entries by status, and changes to published entries waiting for confirmation (supervisors)."""
    require_login(actor)
    require(actor.is_supervisor, "仅运营和主管部门可查看平台统计")
    by_status = {
        str(s): n for s, n in db.execute(select(Entry.status, func.count()).group_by(Entry.status)).all()
    }
    changes = db.scalar(
        select(func.count()).select_from(Entry).where(Entry.pending_status == EntryStatus.submitted)
    )
    return by_status, changes or 0


# --- taxonomies (Art. 9) ------------------------------------------------------------------------


def list_terms(db: Session, kind: str, *, include_inactive: bool = False) -> list[TaxonomyTerm]:
    query = (
        select(TaxonomyTerm).where(TaxonomyTerm.kind == kind).order_by(TaxonomyTerm.sort, TaxonomyTerm.code)
    )
    if not include_inactive:
        query = query.where(TaxonomyTerm.is_active.is_(True))
    return list(db.scalars(query))


def term_names(db: Session) -> dict[tuple[str, str], str]:
    """(kind, code) → name of every term, held with the search snapshot between changes."""
    return search.snapshot(db).labels


def save_term(
    db: Session,
    actor: Actor,
    kind: str,
    code: str,
    name: str,
    description: str = "",
    sort: int = 0,
    is_active: bool = True,
) -> TaxonomyTerm:
    """The regulator adds or edits a classification or grading term; codes are never reused."""
    require_regulator(actor)
    code, name = code.strip(), name.strip()
    errors = {}
    if kind not in set(TaxonomyKind):
        errors["kind"] = "分类类型无效"
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", code):
        errors["code"] = "编码为 1-20 位字母、数字、点、下划线或连字符"
    if not name or len(name) > 100:
        errors["name"] = "请填写名称（不超过 100 字）"
    if errors:
        raise InvalidInput("分类信息有误", fields=errors)
    term = db.scalar(select(TaxonomyTerm).where(TaxonomyTerm.kind == kind, TaxonomyTerm.code == code))
    if term is None:
        term = TaxonomyTerm(
            kind=kind, code=code, name=name, description=description.strip(), sort=sort, is_active=is_active
        )
        db.add(term)
        db.flush()
        search.touch_catalog(db)
        record(
            db,
            actor,
            Tag.catalog_taxonomy_created,
            "taxonomy",
            f"{kind}:{code}",
            summary={"after": {"name": name}},
        )
        return term
    before = {
        "name": term.name,
        "description": term.description,
        "sort": term.sort,
        "is_active": term.is_active,
    }
    after = {"name": name, "description": description.strip(), "sort": sort, "is_active": is_active}
    for k, v in after.items():
        setattr(term, k, v)
    search.touch_catalog(db)
    record(db, actor, Tag.catalog_taxonomy_updated, "taxonomy", f"{kind}:{code}", summary=diff(before, after))
    return term


def ensure_default_taxonomies(db: Session) -> int:
    """Load the shipped default taxonomies into an empty table, and the search vocabulary into an
    empty one (its groups name themes); returns how many taxonomy terms were added."""
    from kaifang.catalog.defaults import GRADES, INDUSTRIES, THEMES

    ensure_default_vocabulary(db)
    if db.scalar(select(TaxonomyTerm.id).limit(1)) is not None:
        return 0
    count = 0
    for kind, terms in (
        (TaxonomyKind.theme, THEMES),
        (TaxonomyKind.industry, INDUSTRIES),
        (TaxonomyKind.grade, GRADES),
    ):
        for i, (code, name, description) in enumerate(terms):
            db.add(TaxonomyTerm(kind=kind, code=code, name=name, description=description, sort=i))
            count += 1
    search.touch_catalog(db)
    return count
