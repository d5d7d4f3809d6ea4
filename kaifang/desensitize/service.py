"""Rules, previews and the review before opening (Art. 16, 25, 26). No HTTP in here.

The scan of an upload proposes a rule for every column holding personal data; the provider
confirms or edits them, marks the quasi-identifiers, previews the masked rows and records a
保密审查 and a 安全风险评估 under exactly those rules. Publication (datastore.service) then
applies the reviewed rules to the staging data and writes only the masked result.

The pseudonym secret of a provider is derived from the master key and never stored, shown,
logged or put in an audit record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from kaifang.accounts.models import OrgRole
from kaifang.accounts.permissions import SYSTEM, Actor, require, require_login, require_org_role
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.catalog import service as catalog
from kaifang.catalog.models import Entry
from kaifang.datastore.models import Resource, ResourceKind, ResourceVersion, VersionStatus
from kaifang.datastore.query import ROW
from kaifang.datastore.storage import FileStore
from kaifang.db import MAX_ID, utcnow
from kaifang.desensitize.detect import DIRECT_IDENTIFIERS, LABELS, ColumnFinding, Kind, scan_table
from kaifang.desensitize.mask import (
    Op,
    Rule,
    RuleError,
    apply_rules,
    default_rule,
    rules_to_json,
    validate_rules,
)
from kaifang.desensitize.models import ColumnRule, Conclusion, SecurityReview
from kaifang.desensitize.risk import k_anonymity
from kaifang.errors import Conflict, InvalidInput, NotFound
from kaifang.settings import Settings

REPORT_KEY = "desensitize"  # where a version's report keeps its scan (and, once published, its rules)
PREVIEW_ROWS = 20
MIN_JUSTIFICATION = 10  # characters of a written justification for an override
MAX_TEXT = 2000


# --- the pseudonym secret -----------------------------------------------------------------------------


def provider_secret(settings: Settings, org_id: int) -> bytes:
    """HMAC-SHA256(master key, "provider:{id}"): the same for every version of a provider, so
    pseudonyms join across versions; different between providers, so they don't across them."""
    master = settings.desensitize_master_key.encode() or hmac.digest(
        settings.secret_key.encode(), b"kaifang:desensitize:master", "sha256"
    )
    return hmac.digest(master, f"provider:{org_id}".encode(), "sha256")


# --- the scan, kept with the version -------------------------------------------------------------------


def finding_to_dict(finding: ColumnFinding) -> dict[str, Any]:
    return {
        "column": finding.column,
        "kind": str(finding.kind) if finding.kind else None,
        "confidence": round(finding.confidence, 4),
        "match_ratio": round(finding.match_ratio, 4),
        "sample_count": finding.sample_count,
        "embedded": {str(k): n for k, n in finding.embedded.items()},
        "personal": finding.personal,
    }


def finding_from_dict(data: dict[str, Any]) -> ColumnFinding:
    return ColumnFinding(
        column=data["column"],
        kind=Kind(data["kind"]) if data.get("kind") else None,
        confidence=float(data["confidence"]),
        match_ratio=float(data["match_ratio"]),
        sample_count=int(data["sample_count"]),
        embedded={Kind(k): int(n) for k, n in data.get("embedded", {}).items()},
        personal=bool(data["personal"]),
    )


def version_findings(version: ResourceVersion) -> list[ColumnFinding]:
    """The scan of a version's typed data, as processing stored it (empty for files)."""
    return [finding_from_dict(f) for f in version.report.get(REPORT_KEY, {}).get("findings", [])]


def kind_label(kind: Kind | str | None) -> str:
    return LABELS[Kind(kind)] if kind else ""


# --- rules -------------------------------------------------------------------------------------------


def resource_rules(db: Session, resource_id: int) -> dict[str, ColumnRule]:
    """The resource's saved rules by column (columns of earlier versions included)."""
    rows = db.scalars(select(ColumnRule).where(ColumnRule.resource_id == resource_id).order_by(ColumnRule.id))
    return {row.column: row for row in rows}


def version_columns(version: ResourceVersion) -> list[str]:
    return [c["name"] for c in version.schema]


def effective_rules(rows: dict[str, ColumnRule], columns: list[str]) -> list[Rule]:
    """The rules that change something in a version, in its column order (keep is the default)."""
    found = (rows.get(c) for c in columns)
    return [Rule(r.column, cast(Op, r.op), dict(r.params)) for r in found if r is not None and r.op != "keep"]


def quasi_columns(rows: dict[str, ColumnRule], columns: list[str]) -> list[str]:
    return [c for c in columns if c in rows and rows[c].quasi]


def rules_digest(rules: list[Rule], quasi: list[str]) -> str:
    """SHA-256 of the rules and quasi-identifier marks: what a review was made under."""
    body = json.dumps({"rules": rules_to_json(rules), "quasi": quasi}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def propose_rules(db: Session, version: ResourceVersion) -> list[str]:
    """After a scan: a column with a personal finding and no rule gets the scan's default rule,
    unconfirmed, so the provider must look at it before the review. Returns the columns."""
    rows = resource_rules(db, version.resource_id)
    proposed = []
    for finding in version_findings(version):
        if finding.personal and finding.column not in rows:
            rule = default_rule(finding)
            db.add(
                ColumnRule(
                    resource_id=version.resource_id,
                    column=finding.column,
                    op=rule.op,
                    params=dict(rule.params),
                    quasi=False,
                    confirmed=False,
                )
            )
            proposed.append(finding.column)
    if proposed:
        record(
            db,
            SYSTEM,
            Tag.desensitize_rules_proposed,
            "resource",
            version.resource_id,
            summary={"after": {"version": version.number, "columns": proposed}},
        )
    return proposed


@dataclass(frozen=True)
class RuleInput:
    """One row of the rules form: what to do with a column, and whether it is a quasi-identifier."""

    column: str
    op: str
    params: dict[str, Any]
    quasi: bool = False


def save_rules(
    db: Session, actor: Actor, resource_id: int, number: int, inputs: list[RuleInput]
) -> dict[str, ColumnRule]:
    """A publisher confirms or edits the rules of the columns of a version in review."""
    resource, version, _entry = _version(db, actor, resource_id, number, OrgRole.publisher)
    if version.status != VersionStatus.review or resource.kind != ResourceKind.table:
        raise Conflict("只有待发布的表格版本可以设置脱敏规则")
    columns = version_columns(version)
    unknown = [i.column for i in inputs if i.column not in columns]
    if unknown:
        raise InvalidInput("脱敏规则中有数据中不存在的列：" + "、".join(unknown[:5]))
    try:
        validate_rules([Rule(i.column, cast(Op, i.op), i.params) for i in inputs], columns)
    except RuleError as exc:
        raise InvalidInput(str(exc)) from exc
    rows = resource_rules(db, resource_id)
    before = {c: rows[c].op for c in columns if c in rows}
    for item in inputs:
        row = rows.get(item.column) or ColumnRule(resource_id=resource_id, column=item.column)
        row.op, row.params, row.quasi, row.confirmed = item.op, dict(item.params), item.quasi, True
        row.updated_by, row.updated_at = actor.user_id, utcnow()
        rows[item.column] = row
        db.add(row)
    db.flush()
    after = {i.column: {"op": i.op, "params": i.params, "quasi": i.quasi} for i in inputs}
    record(
        db,
        actor,
        Tag.desensitize_rules_updated,
        "resource",
        resource_id,
        summary={"before": before, "after": {"version": number, "rules": after}},
    )
    return rows


# --- reading the staging data ----------------------------------------------------------------------------


def _staging_table(store: FileStore, version: ResourceVersion, columns: list[str] | None = None) -> pa.Table:
    path = store.path(version.data_key)
    names = [n for n in pq.read_schema(path).names if n != ROW]
    return pq.read_table(path, columns=[c for c in columns if c in names] if columns is not None else names)


@dataclass(frozen=True)
class Preview:
    """The first rows of a version in review, as uploaded and as they would be published."""

    columns: list[str]
    original: list[dict[str, Any]]
    masked: list[dict[str, Any]]


def _head(store: FileStore, version: ResourceVersion, rows: int) -> pa.Table:
    source = pq.ParquetFile(store.path(version.data_key))
    batch = next(source.iter_batches(batch_size=rows), None)
    table = pa.Table.from_batches([batch]) if batch is not None else source.schema_arrow.empty_table()
    return table.drop_columns([ROW]) if ROW in table.column_names else table


def preview(
    db: Session, actor: Actor, store: FileStore, settings: Settings, resource_id: int, number: int
) -> Preview:
    """Original and masked side by side: provider staff only (the original is unmasked data)."""
    resource, version, entry = _version(db, actor, resource_id, number)
    if version.status != VersionStatus.review or resource.kind != ResourceKind.table:
        raise Conflict("只有待发布的表格版本可以预览脱敏效果")
    head = _head(store, version, PREVIEW_ROWS)
    rules = effective_rules(resource_rules(db, resource_id), head.column_names)
    masked = apply_rules(head, rules, provider_secret(settings, entry.provider_id))
    return Preview(head.column_names, head.to_pylist(), masked.to_pylist())


# --- the risk report and the review --------------------------------------------------------------------


def unmasked_identifiers(findings: list[ColumnFinding], rules: list[Rule]) -> list[dict[str, str]]:
    """Columns holding direct identifiers (or, in free text, embedding them) that no rule changes."""
    changed = {r.column for r in rules}
    out = []
    for f in findings:
        kinds = ({f.kind} if f.kind else set()) | set(f.embedded)
        direct = sorted(k for k in kinds if k in DIRECT_IDENTIFIERS)
        if direct and f.column not in changed:
            out.append({"column": f.column, "kinds": "、".join(LABELS[k] for k in direct)})
    return out


def risk_report(
    db: Session, store: FileStore, settings: Settings, version: ResourceVersion, org_id: int
) -> dict[str, Any]:
    """The automatic part of the review, over the data as it would be published."""
    rows = resource_rules(db, version.resource_id)
    columns = version_columns(version)
    rules, quasi = effective_rules(rows, columns), quasi_columns(rows, columns)
    report: dict[str, Any] = {
        "rules_sha256": rules_digest(rules, quasi),
        "unconfirmed": [c for c in columns if c in rows and not rows[c].confirmed],
        "unmasked": unmasked_identifiers(version_findings(version), rules),
        "k": None,
    }
    if version.resource.kind == ResourceKind.table and quasi:
        table = _staging_table(store, version, quasi)
        masked = apply_rules(
            table, [r for r in rules if r.column in quasi], provider_secret(settings, org_id)
        )
        report["k"] = k_anonymity(masked, quasi, settings.desensitize_k_threshold).to_dict()
    return report


@dataclass(frozen=True)
class ReviewInput:
    confidentiality: str  # passed / failed
    risk_assessment: str
    notes: str = ""
    override_justification: str = ""


def _conclusion(value: str, field: str, label: str) -> Conclusion:
    try:
        return Conclusion(value)
    except ValueError as exc:
        raise InvalidInput(f"请选择{label}结论：通过或不通过", fields={field: "请选择通过或不通过"}) from exc


def record_review(
    db: Session,
    actor: Actor,
    store: FileStore,
    settings: Settings,
    resource_id: int,
    number: int,
    review: ReviewInput,
) -> SecurityReview:
    """The provider records the 保密审查 and 安全风险评估 of a version in review, with the risk
    report computed now, under the rules in force now. An override of unmasked direct
    identifiers needs a written justification, kept on the review and in the audit log."""
    _resource, version, entry = _version(db, actor, resource_id, number, OrgRole.publisher, OrgRole.reviewer)
    if version.status != VersionStatus.review:
        raise Conflict("只有待发布的版本可以进行发布前审查")
    confidentiality = _conclusion(review.confidentiality, "confidentiality", "保密审查")
    risk = _conclusion(review.risk_assessment, "risk_assessment", "安全风险评估")
    justification = review.override_justification.strip()[:MAX_TEXT]
    if justification and len(justification) < MIN_JUSTIFICATION:
        raise InvalidInput(
            f"书面理由至少 {MIN_JUSTIFICATION} 个字，请说明为什么可以不脱敏",
            fields={"override_justification": "理由过短"},
        )
    _ensure_scanned(db, store, version)
    report = risk_report(db, store, settings, version, entry.provider_id)
    if report["unconfirmed"]:
        raise Conflict(
            "以下列的脱敏规则是系统建议、尚未确认，请先确认脱敏规则：" + "、".join(report["unconfirmed"])
        )
    row = SecurityReview(
        version_id=version.id,
        reviewer_id=actor.user_id,
        reviewed_on=date.today(),
        confidentiality=confidentiality,
        risk_assessment=risk,
        notes=review.notes.strip()[:MAX_TEXT],
        override_justification=justification,
        rules=_rules_json(db, version),
        rules_sha256=report["rules_sha256"],
        risk_report=report,
    )
    db.add(row)
    db.flush()
    _audit_review(db, actor, version, row, report)
    return row


def _ensure_scanned(db: Session, store: FileStore, version: ResourceVersion) -> None:
    """A table in review read before uploads were scanned is scanned (and gets its proposed
    rules) when first looked at, so nothing goes out unexamined."""
    if version.resource.kind != ResourceKind.table or REPORT_KEY in version.report:
        return
    findings = scan_table(_staging_table(store, version))
    version.report = {**version.report, REPORT_KEY: {"findings": [finding_to_dict(f) for f in findings]}}
    db.flush()
    propose_rules(db, version)


def _rules_json(db: Session, version: ResourceVersion) -> list[dict[str, Any]]:
    rows = resource_rules(db, version.resource_id)
    return rules_to_json(effective_rules(rows, version_columns(version)))


def _audit_review(
    db: Session, actor: Actor, version: ResourceVersion, row: SecurityReview, report: dict[str, Any]
) -> None:
    k = report["k"] or {}
    summary = {
        "version": version.number,
        "confidentiality": row.confidentiality,
        "risk_assessment": row.risk_assessment,
        "rules_sha256": row.rules_sha256,
        "unmasked": [u["column"] for u in report["unmasked"]],
        "k": k.get("k"),
    }
    record(
        db,
        actor,
        Tag.desensitize_review_recorded,
        "resource",
        version.resource_id,
        summary={"after": summary},
    )
    if report["unmasked"] and row.override_justification:
        record(
            db,
            actor,
            Tag.desensitize_review_overridden,
            "resource",
            version.resource_id,
            comment=row.override_justification,
            summary={"after": {"version": version.number, "unmasked": summary["unmasked"]}},
        )


def latest_review(db: Session, version_id: int) -> SecurityReview | None:
    return db.scalar(
        select(SecurityReview)
        .where(SecurityReview.version_id == version_id)
        .order_by(SecurityReview.id.desc())
        .limit(1)
    )


def publishable_rules(db: Session, version: ResourceVersion) -> tuple[list[Rule], SecurityReview]:
    """The rules a version is published under, with the review that allows it; 409 otherwise."""
    review = latest_review(db, version.id)
    if review is None:
        raise Conflict("发布前须完成保密审查和安全风险评估，请在审查页记录审查结论")
    if not review.passed:
        raise Conflict("该版本的保密审查或安全风险评估结论为不通过，不能发布")
    rows = resource_rules(db, version.resource_id)
    columns = version_columns(version)
    rules = effective_rules(rows, columns)
    if rules_digest(rules, quasi_columns(rows, columns)) != review.rules_sha256:
        raise Conflict("审查后脱敏规则或准标识符已修改，请按新的规则重新审查后再发布")
    unmasked = unmasked_identifiers(version_findings(version), rules)
    if unmasked and not review.override_justification:
        named = "、".join(f"{u['column']}（{u['kinds']}）" for u in unmasked)
        raise Conflict(
            f"以下列含未脱敏的直接标识符：{named}。请设置脱敏规则后重新审查；"
            "确需原样开放的，须由审查人填写书面理由"
        )
    return rules, review


@dataclass(frozen=True)
class ReviewState:
    """Everything the provider's review page shows of a version."""

    resource: Resource
    version: ResourceVersion
    entry: Entry
    findings: list[ColumnFinding]
    rules: dict[str, ColumnRule]
    risk_report: dict[str, Any]
    review: SecurityReview | None

    @property
    def review_current(self) -> bool:
        """The latest review was made under the rules in force now."""
        return self.review is not None and self.review.rules_sha256 == self.risk_report.get("rules_sha256")


def review_state(
    db: Session, actor: Actor, store: FileStore, settings: Settings, resource_id: int, number: int
) -> ReviewState:
    """A version's scan, rules, risk report (computed now while it is in review) and latest review."""
    resource, version, entry = _version(db, actor, resource_id, number)
    review = latest_review(db, version.id)
    if version.status == VersionStatus.review:
        _ensure_scanned(db, store, version)
        report = risk_report(db, store, settings, version, entry.provider_id)
    else:
        report = review.risk_report if review else {}
    rows = resource_rules(db, resource_id)
    columns = version_columns(version)
    rules = {c: rows[c] for c in columns if c in rows}
    return ReviewState(resource, version, entry, version_findings(version), rules, report, review)


@dataclass(frozen=True)
class Vouched:
    """What a loader publishing data it vouches for says about it: its notes, and columns kept
    as they are (with the written justification an unmasked identifier needs)."""

    notes: str
    keep: tuple[str, ...] = ()
    justification: str = ""


def pass_review(
    db: Session,
    actor: Actor,
    store: FileStore,
    settings: Settings,
    resource_id: int,
    number: int,
    vouched: Vouched,
) -> SecurityReview:
    """Confirm the proposed rules (`vouched.keep` columns kept as they are) and record a passing
    review: for loaders such as the demo city and benchmarks. Checked and audited as by hand."""
    _resource, version, _entry = _version(db, actor, resource_id, number, OrgRole.publisher)
    rows = resource_rules(db, resource_id)
    columns = version_columns(version)
    pending = [c for c in columns if c in rows and (not rows[c].confirmed or c in vouched.keep)]
    if pending:
        inputs = [
            RuleInput(
                c,
                "keep" if c in vouched.keep else rows[c].op,
                {} if c in vouched.keep else dict(rows[c].params),
                rows[c].quasi,
            )
            for c in pending
        ]
        save_rules(db, actor, resource_id, number, inputs)
    kept = any(c in vouched.keep for c in columns)
    verdict = ReviewInput(
        Conclusion.passed, Conclusion.passed, vouched.notes, vouched.justification if kept else ""
    )
    return record_review(db, actor, store, settings, resource_id, number, verdict)


# --- what the regulator sees ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewSummary:
    resource: Resource
    version: ResourceVersion
    review: SecurityReview | None


def entry_reviews(db: Session, actor: Actor, entry: Entry) -> list[ReviewSummary]:
    """The newest version of each resource of an entry with its latest review: for the regulator
    confirming the entry (Art. 26) and the provider's staff; read-only."""
    require(actor.is_supervisor or actor.is_member(entry.provider_id), "仅监管部门和提供单位可查看审查记录")
    resources = db.scalars(select(Resource).where(Resource.entry_id == entry.id).order_by(Resource.id))
    out = []
    for resource in resources:
        live = [v for v in resource.versions if v.status in (VersionStatus.review, VersionStatus.published)]
        if live:
            out.append(ReviewSummary(resource, live[-1], latest_review(db, live[-1].id)))
    return out


# --- finding the version -------------------------------------------------------------------------------


def _version(
    db: Session, actor: Actor, resource_id: int, number: int, *roles: OrgRole
) -> tuple[Resource, ResourceVersion, Entry]:
    """A version of a resource, for the provider's staff (with one of `roles`, if given) only."""
    require_login(actor)
    resource = db.get(Resource, resource_id) if 0 < resource_id <= MAX_ID else None
    if resource is None:
        raise NotFound("未找到该数据资源")
    entry = catalog.get_entry(db, actor, resource.entry_id)
    if roles:
        require_org_role(actor, entry.provider_id, *roles)
    require(actor.is_member(entry.provider_id), "仅提供单位人员可查看脱敏和审查信息")
    version = next((v for v in resource.versions if v.number == number), None)
    if version is None:
        raise NotFound(f"未找到第 {number} 版")
    return resource, version, entry


def staging_key(resource_id: int, number: int) -> str:
    """Where the unmasked typed data of an unpublished version lives (provider staff only)."""
    return f"staging/{resource_id}/{number}.parquet"
