"""Catalog search benchmark: 10,000 generated entries, searched over HTTP.

    .venv/bin/python bench/search_bench.py                       # SQLite in a temporary home
    .venv/bin/python bench/search_bench.py --database-url postgresql://root@127.0.0.1:5432/test

Generates a realistic Chinese catalog (``catalog_vocab.py``) into a fresh temporary KAIFANG_HOME —
on PostgreSQL into a dedicated database created beside the one named in the URL and dropped
afterwards — starts ``kaifang serve`` as a subprocess on a free port and measures
``GET /api/v1/datasets``: latency of sequential requests (p50, p95) and throughput with several
concurrent clients. Prints markdown tables beside the peer figure and the target of DESIGN.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, create_engine, insert, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_vocab import (
    CITY,
    CLOSED_REASONS,
    CONTACT_NAMES,
    DISTRICTS,
    OPEN_CONDITIONS,
    PERIODS,
    PROVIDERS,
    SUFFIXES,
    SUMMARY_CLOSINGS,
    SUMMARY_OPENINGS,
    YEARS,
    Provider,
    Subject,
)

from kaifang.accounts.models import Organisation
from kaifang.app import Platform, build_platform, prepare_database
from kaifang.catalog import search
from kaifang.catalog.models import Entry, EntryFormat, EntryStatus, OpenType, SearchDoc
from kaifang.db import is_sqlite, utcnow
from kaifang.settings import load_settings

API = "/api/v1/datasets"
TARGET_P50_MS = 20.0
PEER = "data.gov CKAN `package_search` (DESIGN.md)"
FREQUENCIES = ("realtime", "daily", "weekly", "monthly", "quarterly", "yearly", "irregular")
FORMAT_SETS = (
    ["CSV", "XLSX"],
    ["CSV", "JSON"],
    ["CSV", "JSON", "API"],
    ["XLSX"],
    ["JSON", "API"],
    ["CSV", "GeoJSON", "SHP"],
    ["XML", "JSON"],
    ["PDF"],
)

# What people type into a city portal's search box, plus facet-only browsing and a deep page.
QUERIES: list[dict[str, Any]] = [
    {"q": "公交"},
    {"q": "医疗机构"},
    {"q": "空气质量"},
    {"q": "学校"},
    {"q": "公交 实时"},
    {"q": "企业"},
    {"q": "停车"},
    {"q": "停车场 收费"},
    {"q": "幼儿园"},
    {"q": "养老机构"},
    {"q": "充电桩"},
    {"q": "天气预报"},
    {"q": "水质"},
    {"q": "景区 门票"},
    {"q": "食品经营许可"},
    {"q": "行政处罚"},
    {"q": "社保"},
    {"q": "招聘"},
    {"q": "停电"},
    {"q": "海城区 医院"},
    {"q": "交通事故"},
    {"q": "律师事务所"},
    {"q": "地铁"},
    {"q": "PM2.5"},
    # everyday words, questions, traditional characters, full width, pinyin (issue 7)
    {"q": "办护照"},
    {"q": "哪里可以打疫苗"},
    {"q": "带孩子去哪玩"},
    {"q": "圖書館"},
    {"q": "ＰＭ１０"},
    {"q": "tushuguan"},
    {"q": "公交", "page": 3},
    {"q": "企业", "sort": "newest"},
    {"q": "医疗", "open_type": "unconditional"},
    {"q": "", "theme": "jtys"},
    {"q": "", "open_type": "conditional", "format": "CSV"},
    {"q": "", "provider": "wjw", "update_frequency": "monthly"},
    {"q": "", "grade": "L1", "page": 3},
    {"q": ""},
]


# --- generating the catalog ---------------------------------------------------------------------


def _open_type(rng: random.Random) -> str:
    roll = rng.random()
    return OpenType.unconditional if roll < 0.7 else OpenType.conditional if roll < 0.92 else OpenType.closed


def _title(rng: random.Random, subject: Subject) -> tuple[str, str]:
    area = rng.choice((CITY,) * 3 + DISTRICTS)
    year = rng.choice(YEARS)
    period = rng.choice(PERIODS)
    suffix = rng.choice(SUFFIXES)
    pattern = rng.randrange(4)
    if pattern == 0:
        title = f"{area}{subject.name}{suffix}"
    elif pattern == 1:
        title = f"{area}{subject.name}{suffix}（{year}年）"
    elif pattern == 2:
        title = f"{area}{year}年{period}{subject.name}{suffix}"
    else:
        title = f"{subject.name}{suffix}（{area}）"
    return title, area


def _summary(rng: random.Random, provider: Provider, subject: Subject, area: str) -> str:
    opening = rng.choice(SUMMARY_OPENINGS).format(
        provider=provider.name, area=area, subject=subject.name, suffix=rng.choice(("数据", "信息"))
    )
    fields = rng.sample(subject.fields, k=min(len(subject.fields), rng.randint(3, 5)))
    return f"{opening}，包括{'、'.join(fields)}等字段。{rng.choice(SUMMARY_CLOSINGS)}"


def _entry_fields(rng: random.Random, provider: Provider, subject: Subject, today: date) -> dict[str, Any]:
    title, area = _title(rng, subject)
    open_type = _open_type(rng)
    formats = [] if open_type == OpenType.closed else list(rng.choice(FORMAT_SETS))
    published = utcnow() - timedelta(days=rng.randint(0, 3 * 365), minutes=rng.randint(0, 1440))
    fields: dict[str, Any] = {
        "title": title,
        "summary": _summary(rng, provider, subject, area),
        "keywords": rng.sample(subject.keywords, k=min(len(subject.keywords), rng.randint(2, 4))),
        "theme": subject.theme,
        "industry": subject.industry,
        "grade": {"unconditional": "L1", "conditional": rng.choice(("L2", "L3"))}.get(
            open_type, rng.choice(("L3", "L4"))
        ),
        "open_type": open_type,
        "update_frequency": rng.choice(FREQUENCIES),
        "access_methods": [] if not formats else ["download", "api"] if "API" in formats else ["download"],
        "formats": formats,
        "contact_name": rng.choice(CONTACT_NAMES),
        "contact_phone": f"022-2{rng.randint(3000000, 3999999)}",
        "contact_email": f"{provider.slug}-data@example.gov.cn",
        "spatial_coverage": area if area != CITY else f"{CITY}全市",
        "terms_of_use": "使用时请注明数据来源：海河市公共数据开放平台。",
        "status": EntryStatus.published,
        "created_at": published - timedelta(days=7),
        "updated_at": published,
        "confirmed_at": published - timedelta(days=1),
        "published_at": published,
        "last_published_at": published,
    }
    if open_type == OpenType.conditional:
        fields["open_conditions"] = rng.choice(OPEN_CONDITIONS)
    if open_type == OpenType.closed:
        reason, basis = rng.choice(CLOSED_REASONS)
        fields.update(
            closed_reason=reason, closed_legal_basis=basis, next_review_date=today + timedelta(days=365)
        )
    return fields


def generate(
    platform: Platform, count: int, *, slow_index: bool = False, seed: int = 20261127
) -> dict[str, float]:
    """Insert `count` published entries in bulk and index them for search."""
    rng = random.Random(seed)
    today = date.today()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with platform.db.session() as db:
        orgs = {p.slug: Organisation(slug=p.slug, name=p.name, org_type=p.org_type) for p in PROVIDERS}
        db.add_all(orgs.values())
        db.flush()
        weights = [len(p.subjects) for p in PROVIDERS]
        entries = []
        for _ in range(count):
            provider = rng.choices(PROVIDERS, weights)[0]
            subject = rng.choice(provider.subjects)
            entry = Entry(provider_id=orgs[provider.slug].id, **_entry_fields(rng, provider, subject, today))
            entry.provider = orgs[provider.slug]
            entries.append(entry)
        db.add_all(entries)
        db.flush()
        timings["insert_s"] = time.perf_counter() - started
        started = time.perf_counter()
        if slow_index:
            for entry in entries:
                search.index_entry(db, entry)
        else:
            bulk_index(db, entries)
            check_index_parity(db, rng.sample(entries, k=min(25, len(entries))))
        timings["index_s"] = time.perf_counter() - started
    return timings


def bulk_index(db: Session, entries: list[Entry]) -> None:
    """What `search.index_entry` writes, for many entries in a few statements.

    `index_entry` costs about 4 ms an entry (several round trips each); `check_index_parity`
    proves on a sample that this path writes the same rows.
    """
    docs, formats = [], []
    for entry in entries:
        fields = search.doc_fields(
            entry.title, entry.keywords or [], entry.summary or "", entry.provider.name
        )
        docs.append({"entry_id": entry.id, **fields})
        formats += [{"entry_id": entry.id, "format": f} for f in dict.fromkeys(entry.formats or [])]
    db.execute(insert(SearchDoc), docs)
    if formats:
        db.execute(insert(EntryFormat), formats)
    if is_sqlite(db):
        db.execute(
            text(
                "INSERT INTO search_fts(rowid, title, keywords, summary, provider) "
                "VALUES (:entry_id, :title, :keywords, :summary, :provider)"
            ),
            docs,
        )
    db.flush()


def _index_rows(db: Session, ids: list[int]) -> list[Any]:
    rows: list[Any] = [
        tuple(r)
        for r in db.execute(
            text(
                "SELECT entry_id, title, keywords, summary, provider FROM search_docs "
                "WHERE entry_id IN :ids ORDER BY entry_id"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        )
    ]
    rows += [
        tuple(r)
        for r in db.execute(
            text(
                "SELECT entry_id, format FROM entry_formats WHERE entry_id IN :ids ORDER BY entry_id, format"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": ids},
        )
    ]
    if is_sqlite(db):
        rows += [
            tuple(r)
            for r in db.execute(
                text(
                    "SELECT rowid, title, keywords, summary, provider FROM search_fts "
                    "WHERE rowid IN :ids ORDER BY rowid"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": ids},
            )
        ]
    return rows


def check_index_parity(db: Session, sample: list[Entry]) -> None:
    """Re-index a sample with kaifang's own `index_entry`; the rows must not change."""
    ids = sorted(e.id for e in sample)
    before = _index_rows(db, ids)
    for entry in sample:
        search.index_entry(db, entry)
    after = _index_rows(db, ids)
    if before != after:
        raise SystemExit(
            "bench/search_bench.py: bulk_index no longer writes what search.index_entry writes; "
            "update bulk_index or run with --slow-index"
        )


def settle(platform: Platform) -> None:
    """On PostgreSQL, VACUUM ANALYZE the freshly loaded catalog, as autovacuum does within about a
    minute of a bulk load: without statistics the planner misjudges full-text queries, and the GIN
    index's pending list of new entries is read in full by every search until it is merged."""
    engine = platform.db.engine
    if is_sqlite(engine):
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("search_docs", "entries", "entry_formats"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))


# --- the database and the server ----------------------------------------------------------------


@contextmanager
def dedicated_postgres(url: str) -> Iterator[str]:
    """A fresh database on the server of `url` for this run, dropped afterwards (like the tests)."""
    name = f"kaifang_bench_{os.getpid()}_{secrets.token_hex(3)}"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(home: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KAIFANG_HOME=str(home),
        KAIFANG_DATABASE_URL=database_url,
        KAIFANG_MODE="dev",
        # The bench is one client IP sending thousands of requests; the per-IP API limit would
        # answer 429 long before the measurement ends.
        KAIFANG_API_RATE_LIMIT="100000000/minute",
    )
    return env


@contextmanager
def running_server(home: Path, database_url: str) -> Iterator[str]:
    """`kaifang serve` in a subprocess on a free port; yields its base URL once /healthz answers."""
    port = free_port()
    kaifang = Path(sys.executable).with_name("kaifang")
    command = [str(kaifang)] if kaifang.exists() else [sys.executable, "-m", "kaifang.cli"]
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env(home, database_url),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, home / "server.log")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kaifang serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("kaifang serve did not answer /healthz within 60 s")


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Sample:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed_get(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    return (time.perf_counter() - started) * 1000, response


def warm_up(base: str, rounds: int = 3) -> dict[int, int]:
    """Run every query a few times (jieba, caches, connection pool); returns each query's hit count."""
    counts: dict[int, int] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(rounds):
            for i, params in enumerate(QUERIES):
                response = client.get(API, params=params)
                if response.status_code != 200:
                    raise SystemExit(f"{API} {params} answered {response.status_code}: {response.text[:500]}")
                counts[i] = response.json()["count"]
    return counts


def sequential(base: str, requests: int) -> tuple[Sample, dict[int, list[float]]]:
    """One client, one request at a time, cycling through the queries."""
    sample = Sample()
    per_query: dict[int, list[float]] = {i: [] for i in range(len(QUERIES))}
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(requests):
            i = n % len(QUERIES)
            ms, response = timed_get(client, API, QUERIES[i])
            if response.status_code != 200:
                sample.errors += 1
                continue
            sample.latencies_ms.append(ms)
            per_query[i].append(ms)
    return sample, per_query


def concurrent(base: str, clients: int, duration: float) -> tuple[Sample, float]:
    """`clients` threads, each with its own keep-alive connection, for `duration` seconds."""
    samples = [Sample() for _ in range(clients)]
    deadline = time.perf_counter() + duration

    def worker(k: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            n = k * 7
            while time.perf_counter() < deadline:
                ms, response = timed_get(client, API, QUERIES[n % len(QUERIES)])
                n += 1
                if response.status_code == 200:
                    samples[k].latencies_ms.append(ms)
                else:
                    samples[k].errors += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    merged = Sample([ms for s in samples for ms in s.latencies_ms], sum(s.errors for s in samples))
    return merged, elapsed


def healthz_floor(base: str, requests: int = 200) -> float:
    """p50 of /healthz: the HTTP stack and one trivial query, for scale."""
    with httpx.Client(base_url=base, timeout=30) as client:
        return statistics.median(timed_get(client, "/healthz", {})[0] for _ in range(requests))


# --- reporting ----------------------------------------------------------------------------------


def describe(params: dict[str, Any]) -> str:
    parts = [f"q={params['q']}" if params.get("q") else "q=（空）"]
    parts += [f"{k}={v}" for k, v in params.items() if k != "q"]
    return " ".join(parts)


def summary_table(args: argparse.Namespace, engine: str, results: dict[str, Any]) -> list[str]:
    seq: Sample = results["sequential"]
    conc: Sample = results["concurrent"]
    p50, p95 = percentile(seq.latencies_ms, 50), percentile(seq.latencies_ms, 95)
    rps = len(conc.latencies_ms) / results["elapsed"]
    verdict = "met" if p50 < TARGET_P50_MS else "MISSED"
    c50, c95 = percentile(conc.latencies_ms, 50), percentile(conc.latencies_ms, 95)
    return [
        f"| measure | Kaifang ({engine}) | {PEER} | target |",
        "|---|---|---|---|",
        f"| p50, sequential ({len(seq.latencies_ms)} requests) | {p50:.1f} ms | — "
        f"| < {TARGET_P50_MS:.0f} ms ({verdict}) |",
        f"| p95, sequential | {p95:.1f} ms | — | — |",
        f"| mean, sequential | {statistics.fmean(seq.latencies_ms):.1f} ms | 1,017 ms (75 users) | — |",
        f"| requests/s, {args.concurrency} concurrent clients, {results['elapsed']:.0f} s | {rps:.0f} "
        "| about 20 (75 users) | — |",
        f"| p50 / p95 with {args.concurrency} concurrent clients | {c50:.1f} / {c95:.1f} ms | — | — |",
        f"| errors (non-200) | {seq.errors + conc.errors} | — | 0 |",
        f"| `/healthz` p50 (HTTP floor) | {results['healthz']:.1f} ms | — | — |",
    ]


def query_table(results: dict[str, Any]) -> list[str]:
    lines = ["| query | hits | p50 ms | p95 ms |", "|---|---:|---:|---:|"]
    for i, params in enumerate(QUERIES):
        ms = results["per_query"][i]
        hits = results["counts"][i]
        lines.append(
            f"| {describe(params)} | {hits:,} | {percentile(ms, 50):.1f} | {percentile(ms, 95):.1f} |"
        )
    return lines


def report(args: argparse.Namespace, engine: str, timings: dict[str, float], results: dict[str, Any]) -> str:
    how = "index_entry" if args.slow_index else "bulk, checked against index_entry"
    lines = [
        f"## Catalog search, {args.entries:,} entries, {engine}",
        "",
        f"Generated in {timings['insert_s']:.1f} s and indexed in {timings['index_s']:.1f} s ({how}). "
        f"Endpoint `GET {API}`, {len(QUERIES)} queries in rotation, server `kaifang serve` "
        f"(one process), client on the same machine ({os.cpu_count()} CPUs, load average "
        f"{results['load']:.1f} before the run).",
        "",
        *summary_table(args, engine, results),
        "",
        *query_table(results),
    ]
    return "\n".join(lines)


# --- profiling ----------------------------------------------------------------------------------


def profile(platform: Platform, rounds: int) -> str:
    """Where a search spends its time in-process: the service call and the API's serialisation."""
    from pyinstrument import Profiler

    from kaifang.accounts.permissions import Actor
    from kaifang.catalog.schemas import entry_out
    from kaifang.catalog.service import term_names

    profiler = Profiler(interval=0.0005)
    filters = set(search.FACETS)
    with platform.db.session() as db:
        profiler.start()
        for _ in range(rounds):
            for params in QUERIES:
                facet_filters = {k: [str(v)] for k, v in params.items() if k in filters}
                result = search.search_catalog(
                    db,
                    Actor(),
                    str(params.get("q", "")),
                    facet_filters,
                    sort=str(params.get("sort", "relevance")),
                    page=int(params.get("page", 1)),
                    page_size=platform.settings.page_size,
                    labels=term_names(db),
                )
                [entry_out(e, internal=False) for e in result.entries]
        profiler.stop()
    return profiler.output_text(unicode=True, color=False, show_all=False)


# --- main ---------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(base: str, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then the sequential and the concurrent runs against a running server."""
    results: dict[str, Any] = {"load": os.getloadavg()[0]}
    log(f"server at {base}; warming up …")
    results["counts"] = warm_up(base)
    results["healthz"] = healthz_floor(base)
    log(f"sequential: {args.requests} requests …")
    results["sequential"], results["per_query"] = sequential(base, args.requests)
    log(f"concurrent: {args.concurrency} clients for {args.duration:.0f} s …")
    results["concurrent"], results["elapsed"] = concurrent(base, args.concurrency, args.duration)
    return results


def run(args: argparse.Namespace, home: Path, database_url: str, engine: str) -> str:
    settings = load_settings(mode="dev", home=home, database_url=database_url)
    platform = build_platform(settings)
    prepare_database(platform)
    log(f"generating {args.entries:,} entries into {engine} …")
    timings = generate(platform, args.entries, slow_index=args.slow_index)
    log(f"  insert {timings['insert_s']:.1f} s, index {timings['index_s']:.1f} s")
    settle(platform)
    profile_text = profile(platform, args.profile) if args.profile else ""
    platform.db.dispose()
    with running_server(home, settings.database_url) as base:
        results = measure(base, args)
    output = report(args, engine, timings, results)
    if profile_text:
        title = f"## Profile ({args.profile} passes in-process: search + serialisation)"
        output += f"\n\n{title}\n\n```\n{profile_text}```"
    return output


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Catalog search benchmark over HTTP")
    parser.add_argument("--entries", type=int, default=10_000, help="catalog size (default 10,000)")
    parser.add_argument(
        "--database-url",
        default="",
        help="PostgreSQL server URL, e.g. postgresql://root@127.0.0.1:5432/test; a dedicated database "
        "is created beside it and dropped afterwards (default: SQLite in a temporary home)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the concurrent run")
    parser.add_argument("--requests", type=int, default=640, help="sequential requests (default 640)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="also profile ROUNDS passes over the queries in-process with pyinstrument "
        "(pip install -e '.[bench]')",
    )
    parser.add_argument(
        "--slow-index",
        action="store_true",
        help="index every entry with search.index_entry (about 4 ms each)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary home (SQLite file, server log)"
    )
    parser.add_argument("--output", type=Path, help="also write the markdown report to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="kaifang-bench-"))
    try:
        if args.database_url:
            with dedicated_postgres(args.database_url) as url:
                output = run(args, home, url, "PostgreSQL")
        else:
            output = run(args, home, "", "SQLite")
    finally:
        if args.keep:
            print(f"home kept at {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    print(output)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(output + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
