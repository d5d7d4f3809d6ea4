"""Loads the demo city (海河市) into an empty home: providers, accounts, taxonomies and entries.

Entries are written with a plausible workflow history (created, submitted, confirmed, published…)
in the audit table, as if staff had walked them through the platform.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaifang.accounts.models import Membership, Organisation, StaffContact, User
from kaifang.accounts.permissions import Actor
from kaifang.accounts.service import hash_password
from kaifang.audit.service import record
from kaifang.audit.tags import Tag
from kaifang.catalog import search
from kaifang.catalog.models import CATALOG_FIELDS, Entry, EntryStatus
from kaifang.catalog.service import ensure_default_taxonomies
from kaifang.db import utcnow
from kaifang.demo import data
from kaifang.errors import Conflict

# The steps each final state has been through, with the role that took each step.
PATHS: dict[str, list[tuple[Tag, str]]] = {
    "draft": [(Tag.catalog_entry_created, "publisher")],
    "submitted": [(Tag.catalog_entry_created, "publisher"), (Tag.catalog_entry_submitted, "publisher")],
    "returned": [
        (Tag.catalog_entry_created, "publisher"),
        (Tag.catalog_entry_submitted, "publisher"),
        (Tag.catalog_entry_returned, "regulator"),
    ],
    "confirmed": [
        (Tag.catalog_entry_created, "publisher"),
        (Tag.catalog_entry_submitted, "publisher"),
        (Tag.catalog_entry_confirmed, "regulator"),
    ],
    "published": [
        (Tag.catalog_entry_created, "publisher"),
        (Tag.catalog_entry_submitted, "publisher"),
        (Tag.catalog_entry_confirmed, "regulator"),
        (Tag.catalog_entry_published, "publisher"),
    ],
}
PATHS["retired"] = [*PATHS["published"], (Tag.catalog_entry_retired, "publisher")]


def home_has_data(db: Session) -> bool:
    return bool(db.scalar(select(func.count()).select_from(User)))


def seed(db: Session, *, today: date | None = None) -> dict[str, int]:
    """Seed the demo city; refuses a database that already holds accounts."""
    if home_has_data(db):
        raise Conflict("该数据目录中已有数据，演示数据只能载入空的平台")
    ensure_default_taxonomies(db)
    rng = random.Random(20261127)
    now = utcnow()
    hashed = hash_password(data.DEMO_PASSWORD)
    orgs: dict[str, Organisation] = {}
    for o in data.ORGANISATIONS:
        org = Organisation(**{k: v for k, v in o.items() if k != "staff"}, staff_updated_at=now)
        org.staff = [
            StaffContact(name=n, position=p, phone=ph, email=em, duty=d) for n, p, ph, em, d in o["staff"]
        ]
        db.add(org)
        orgs[org.slug] = org
    db.flush()
    users: dict[str, User] = {}
    for u in data.USERS:
        user = User(
            username=u["username"],
            display_name=u["display_name"],
            email=u["email"],
            user_type=u["user_type"],
            system_role=u.get("system_role"),
            password_hash=hashed,
            email_verified_at=now,
            organisation_name=u.get("organisation_name", ""),
            credit_code=u.get("credit_code", ""),
        )
        db.add(user)
        users[user.username] = user
    db.flush()
    for u in data.USERS:
        for slug, role in u.get("memberships", []):
            db.add(Membership(user_id=users[u["username"]].id, org_id=orgs[slug].id, role=role))
    regulator = users["demo-regulator"]
    publishers = {
        m[0]: users[u["username"]]
        for u in data.USERS
        for m in u.get("memberships", [])
        if m[1] == "publisher"
    }
    publishers["jtw"] = users["demo-provider"]
    for i, e in enumerate(data.ENTRIES):
        _seed_entry(
            db,
            e,
            orgs[e["provider"]],
            publishers[e["provider"]],
            regulator,
            age_days=int(540 * (1 - i / len(data.ENTRIES))) + rng.randint(0, 20),
        )
    return {"organisations": len(orgs), "users": len(users), "entries": len(data.ENTRIES)}


def _seed_entry(
    db: Session, e: dict[str, Any], org: Organisation, publisher: User, regulator: User, age_days: int
) -> None:
    fields = {k: e.get(k) for k in CATALOG_FIELDS if k in e}
    for key in ("temporal_start", "temporal_end", "next_review_date"):
        value = fields.get(key)
        fields[key] = date.fromisoformat(value) if value else None
    status = e["status"]
    when = utcnow() - timedelta(days=age_days)
    entry = Entry(
        provider_id=org.id,
        created_by=publisher.id,
        status=status,
        return_reason=e.get("return_reason", ""),
        created_at=when,
        updated_at=when,
        **fields,
    )
    entry.provider = org
    db.add(entry)
    db.flush()
    actors = {
        "publisher": Actor(user_id=publisher.id, username=publisher.username),
        "regulator": Actor(user_id=regulator.id, username=regulator.username),
    }
    for step, (tag, role) in enumerate(PATHS[status]):
        at = when + timedelta(days=step * 2, hours=step)
        comment = e.get("return_reason", "") if tag == Tag.catalog_entry_returned else ""
        if tag == Tag.catalog_entry_retired:
            comment = "数据已由新目录替代，停止更新"
            entry.retired_at = at
        if tag == Tag.catalog_entry_confirmed:
            entry.confirmed_at = at
        if tag == Tag.catalog_entry_published:
            entry.published_at = entry.last_published_at = at
        rec = record(db, actors[role], tag, "entry", entry.id, comment=comment)
        rec.at = at
        entry.updated_at = at
    search.index_entry(db, entry)
    assert entry.status in set(EntryStatus)
