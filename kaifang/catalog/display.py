"""How catalog fields, pending changes, workflow history and allowed actions are shown on pages.

Shared by the provider workspace and the admin pages; no HTTP and no rules here (the service
decides what is allowed, `entry_actions` only decides which buttons to offer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from kaifang.accounts.models import OrgRole
from kaifang.accounts.permissions import Actor
from kaifang.audit.models import AuditRecord
from kaifang.audit.tags import Tag
from kaifang.catalog import service
from kaifang.catalog.models import (
    ACCESS_METHOD_LABELS,
    CATALOG_FIELDS,
    FREQUENCY_LABELS,
    OPEN_TYPE_LABELS,
    STATUS_LABELS,
    Entry,
    EntryStatus,
)

FIELD_LABELS = {
    "title": "数据集名称",
    "summary": "摘要",
    "keywords": "关键词",
    "theme": "主题分类",
    "industry": "行业分类",
    "grade": "数据分级",
    "open_type": "开放类型",
    "open_conditions": "开放条件",
    "usage_requirements": "使用要求",
    "update_frequency": "更新频率",
    "access_methods": "开放方式",
    "formats": "数据格式",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "contact_email": "联系邮箱",
    "spatial_coverage": "空间范围",
    "temporal_start": "时间范围起",
    "temporal_end": "时间范围止",
    "terms_of_use": "使用条款",
    "closed_reason": "不予开放理由",
    "closed_legal_basis": "法律依据",
    "next_review_date": "下次评估审查日期",
    "status": "状态",
    "pending_status": "变更状态",
}

ACTION_LABELS: dict[str, str] = {
    Tag.catalog_entry_created: "新建",
    Tag.catalog_entry_edited: "修改",
    Tag.catalog_entry_submitted: "提交确认",
    Tag.catalog_entry_confirmed: "确认",
    Tag.catalog_entry_returned: "退回",
    Tag.catalog_entry_published: "发布",
    Tag.catalog_entry_retired: "下线",
}


# --- showing field values and changes -----------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One changed field, its values already in words."""

    field: str
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class HistoryRow:
    at: datetime
    actor: str
    action: str
    comment: str
    changes: list[FieldChange]


Names = dict[tuple[str, str], str]


def display_value(key: str, value: Any, names: Names) -> str:
    """A catalog field's value as a person reads it: names for codes, 、 between list items."""
    if value in (None, "", []):
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list | tuple):
        labels = ACCESS_METHOD_LABELS if key == "access_methods" else {}
        return "、".join(labels.get(str(v), str(v)) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if key in ("theme", "industry", "grade"):
        return names.get((key, text), text)
    vocab: dict[str, Any] = {
        "open_type": OPEN_TYPE_LABELS,
        "update_frequency": FREQUENCY_LABELS,
        "status": STATUS_LABELS,
        "pending_status": STATUS_LABELS,
    }
    return str(vocab.get(key, {}).get(text, text))


def _ordered_keys(keys: set[str]) -> list[str]:
    order = {k: i for i, k in enumerate(FIELD_LABELS)}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))


def summary_changes(summary: dict[str, Any] | None, names: Names) -> list[FieldChange]:
    """The before/after summary of an audit record, field by field, in the form's order."""
    before = (summary or {}).get("before") or {}
    after = (summary or {}).get("after") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return [
        FieldChange(
            k,
            FIELD_LABELS.get(k, k),
            display_value(k, before.get(k), names),
            display_value(k, after.get(k), names),
        )
        for k in _ordered_keys(set(before) | set(after))
    ]


def pending_changes(entry: Entry, names: Names) -> list[FieldChange]:
    """What a pending change to a published entry would change, live value against proposed value."""
    if not entry.pending:
        return []
    proposed = service.proposed_fields(entry)
    return [
        FieldChange(
            k,
            FIELD_LABELS[k],
            display_value(k, getattr(entry, k), names),
            display_value(k, proposed[k], names),
        )
        for k in CATALOG_FIELDS
        if k in entry.pending
    ]


def entry_details(fields: dict[str, Any], names: Names) -> list[tuple[str, str]]:
    """Every filled-in catalog field as (label, value in words)."""
    shown = ((FIELD_LABELS[k], display_value(k, fields.get(k), names)) for k in CATALOG_FIELDS)
    return [(label, value) for label, value in shown if value]


def history_rows(records: list[AuditRecord], names: Names) -> list[HistoryRow]:
    return [
        HistoryRow(
            r.at,
            r.actor_name,
            ACTION_LABELS.get(r.action, r.action),
            r.comment,
            summary_changes(r.summary, names),
        )
        for r in records
    ]


# --- what the actor may do with an entry now ----------------------------------------------------


@dataclass(frozen=True)
class EntryActions:
    """Which workflow buttons to show. The service checks every action again when it is posted."""

    can_edit: bool
    submit: bool
    publish: bool
    retire: bool
    discard: bool
    waiting: bool


def entry_actions(actor: Actor, entry: Entry) -> EntryActions:
    publisher = actor.has_org_role(entry.provider_id, OrgRole.publisher)
    waiting = EntryStatus.submitted in (entry.status, entry.pending_status)
    published = entry.status == EntryStatus.published
    change = published and bool(entry.pending)
    open_states = (EntryStatus.draft, EntryStatus.returned)
    ready = entry.status in open_states or (change and entry.pending_status in open_states)
    confirmed = EntryStatus.confirmed in (entry.status, entry.pending_status if change else None)
    return EntryActions(
        can_edit=publisher and not waiting and entry.status != EntryStatus.retired,
        submit=publisher and ready,
        publish=publisher and confirmed,
        retire=publisher and published,
        discard=publisher and change and not waiting,
        waiting=waiting,
    )
