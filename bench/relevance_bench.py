"""Search relevance on a realistic city catalog: NDCG@10 and recall@10, Kaifang beside plain BM25.

    .venv/bin/python bench/relevance_bench.py                 # SQLite in a temporary home
    .venv/bin/python bench/relevance_bench.py --database-url postgresql://root@127.0.0.1:5432/test
    .venv/bin/python bench/relevance_bench.py --per-query     # also every query's figures and top 3

The test set lives in ``bench/relevance/``: ``providers.json`` and ``catalog.json`` (a catalog of
the fictitious city 海河市 across every theme, written the way departments write catalogs) and
``queries.json`` (what people type — everyday words, questions, traditional characters, full-width
and lower-case codes, pinyin, plain catalog words — each with graded judgments: 3 exactly what was
asked for, 2 clearly relevant, 1 marginally relevant; unlisted entries count 0).

Kaifang is measured through ``search_catalog`` (what the page and the API call) as an anonymous
visitor, on a platform migrated and seeded like any new one (default vocabulary included), the
entries indexed by ``search.index_entry``. The baseline (``relevance_baseline.py``) is the search
before issue 7: jieba + the same FTS5 table and BM25 weights, without the new features.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import secrets
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relevance_baseline import PlainBM25

from kaifang.accounts.models import Organisation
from kaifang.accounts.permissions import Actor
from kaifang.app import Platform, build_platform, prepare_database
from kaifang.catalog import search
from kaifang.catalog.models import Entry, EntryStatus
from kaifang.db import utcnow
from kaifang.settings import load_settings

SET = Path(__file__).resolve().parent / "relevance"
K = 10
TARGET_NDCG = 0.90


def read(path: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


# --- measures -----------------------------------------------------------------------------------


def dcg(grades: list[int]) -> float:
    return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(grades[:K]))


def ndcg(ranked: list[str], judged: dict[str, int]) -> float:
    ideal = dcg(sorted(judged.values(), reverse=True))
    return dcg([judged.get(key, 0) for key in ranked]) / ideal if ideal else 0.0


def recall(ranked: list[str], judged: dict[str, int]) -> float:
    relevant = {key for key, grade in judged.items() if grade > 0}
    return len(relevant & set(ranked[:K])) / len(relevant) if relevant else 0.0


# --- the catalog in a real platform -------------------------------------------------------------


def load_catalog(platform: Platform, providers: list[dict[str, Any]], entries: list[dict[str, Any]]) -> None:
    """Insert the entries as published and index each one with kaifang's own index_entry."""
    now = utcnow()
    with platform.db.session() as db:
        orgs = {
            p["slug"]: Organisation(slug=p["slug"], name=p["name"], org_type=p["org_type"]) for p in providers
        }
        db.add_all(orgs.values())
        db.flush()
        for item in entries:
            published = now - timedelta(days=item["age_days"], hours=1)
            closed = item.get("open_type") == "closed"
            entry = Entry(
                provider_id=orgs[item["provider"]].id,
                title=item["title"],
                summary=item["summary"],
                keywords=item["keywords"],
                theme=item["theme"],
                industry=item["industry"],
                grade="L3" if closed else "L1",
                open_type=item.get("open_type", "unconditional"),
                update_frequency=item["update_frequency"],
                formats=item.get("formats", []),
                access_methods=[] if closed else ["download"],
                status=EntryStatus.published,
                published_at=published,
                last_published_at=published,
                confirmed_at=published,
                created_at=published,
                updated_at=published,
            )
            entry.provider = orgs[item["provider"]]
            db.add(entry)
            db.flush()
            search.index_entry(db, entry)
            item["id"] = entry.id


def kaifang_search(platform: Platform, keys: dict[int, str], q: str) -> tuple[list[str], search.SearchResult]:
    with platform.db.session() as db:
        result = search.search_catalog(db, Actor(), q, page_size=K)
        return [keys[e.id] for e in result.entries], result


# --- the run ------------------------------------------------------------------------------------


@contextmanager
def dedicated_postgres(url: str) -> Iterator[str]:
    """A fresh database on the server of `url` for this run, dropped afterwards."""
    name = f"kaifang_relevance_{secrets.token_hex(4)}"
    admin = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def evaluate(home: Path, database_url: str, queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    providers, entries = read(SET / "providers.json"), read(SET / "catalog.json")
    platform = build_platform(load_settings(mode="dev", home=home, database_url=database_url))
    try:
        prepare_database(platform)
        load_catalog(platform, providers, entries)
        keys = {item["id"]: item["key"] for item in entries}
        baseline = PlainBM25(entries, {p["slug"]: p["name"] for p in providers})
        rows = []
        for item in queries:
            ranked, result = kaifang_search(platform, keys, item["q"])
            plain = baseline.search(item["q"])
            rows.append(
                {
                    **item,
                    "kaifang": ranked,
                    "plain": plain,
                    "how": "partial" if result.partial else "expanded" if result.expanded else "",
                    "did_you_mean": result.did_you_mean,
                }
            )
        return rows
    finally:
        platform.db.dispose()


def _figures(rows: list[dict[str, Any]], system: str) -> tuple[float, float, int]:
    n = [ndcg(r[system], r["grades"]) for r in rows]
    rc = [recall(r[system], r["grades"]) for r in rows]
    return statistics.fmean(n), statistics.fmean(rc), sum(1 for r in rows if not r[system])


def report(rows: list[dict[str, Any]], title: str, per_query: bool) -> str:
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    k_ndcg, k_recall, k_empty = _figures(rows, "kaifang")
    verdict = "met" if k_ndcg >= TARGET_NDCG and not k_empty else "MISSED"
    lines = [
        f"## {title}",
        "",
        f"| queries | n | NDCG@{K} Kaifang | NDCG@{K} plain BM25 | recall@{K} Kaifang "
        f"| recall@{K} plain BM25 | no result: Kaifang / plain |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in [*kinds, "all"]:
        subset = rows if kind == "all" else [r for r in rows if r["kind"] == kind]
        kn, kr, ke = _figures(subset, "kaifang")
        pn, pr, pe = _figures(subset, "plain")
        label = f"**{kind}**" if kind == "all" else kind
        lines.append(f"| {label} | {len(subset)} | {kn:.3f} | {pn:.3f} | {kr:.3f} | {pr:.3f} | {ke} / {pe} |")
    lines += [
        "",
        f"Target NDCG@{K} ≥ {TARGET_NDCG:.2f} with no query returning nothing: {verdict} "
        f"(NDCG@{K} {k_ndcg:.3f}, recall@{K} {k_recall:.3f}, {k_empty} empty).",
    ]
    if per_query:
        lines += [
            "",
            "| query | kind | NDCG Kaifang | NDCG plain | Kaifang top 3 | plain top 3 |",
            "|---|---|---:|---:|---|---|",
        ]
        for r in rows:
            how = f" ({r['how']})" if r["how"] else ""
            lines.append(
                f"| {r['q']} | {r['kind']} | {ndcg(r['kaifang'], r['grades']):.2f}{how} "
                f"| {ndcg(r['plain'], r['grades']):.2f} | {', '.join(r['kaifang'][:3]) or '—'} "
                f"| {', '.join(r['plain'][:3]) or '—'} |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Catalog search relevance: Kaifang beside plain BM25")
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL server URL; a dedicated database is created beside it and dropped afterwards "
        "(default: SQLite in a temporary home)",
    )
    parser.add_argument(
        "--queries",
        type=Path,
        default=SET / "queries.json",
        help="the judged queries (default bench/relevance/queries.json; queries_heldout.json was "
        "written after the ranking was tuned and never tuned on)",
    )
    parser.add_argument("--per-query", action="store_true", help="also print every query's figures")
    parser.add_argument("--output", type=Path, help="also write the markdown report to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    queries = read(args.queries)
    home = Path(tempfile.mkdtemp(prefix="kaifang-relevance-"))
    try:
        if args.database_url:
            with dedicated_postgres(args.database_url) as url:
                rows, engine = evaluate(home, url, queries), "PostgreSQL"
        else:
            rows, engine = evaluate(home, "", queries), "SQLite"
    finally:
        shutil.rmtree(home, ignore_errors=True)
    entries = len(read(SET / "catalog.json"))
    title = f"Search relevance, {args.queries.name}: {len(rows)} queries on {entries} entries, {engine}"
    output = report(rows, title, args.per_query)
    print(output)
    if args.output:
        args.output.write_text(output + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
