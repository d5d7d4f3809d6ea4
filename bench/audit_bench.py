"""What auditing costs the data API: throughput with auditing on and off, interleaved in one run.

    .venv/bin/python bench/audit_bench.py                   # SQLite, 50,000 rows, 12 rounds of 2 s
    .venv/bin/python bench/audit_bench.py --control         # both servers unaudited: the noise floor
    .venv/bin/python bench/audit_bench.py --database-url postgresql://root@127.0.0.1:5432/postgres

Two `kaifang serve` processes run side by side, each on a temporary home (and, with
`--database-url`, a database of its own on that server) holding the same published 无条件开放
table (`table.py`, registered as a published version like `http_bench.py` does). One audits as in
production; the other runs with `KAIFANG_AUDIT_ENABLED=false` (refused in production mode): no
request records and no data-access records, state changes only. Client threads ask the data API the
same questions of both in short windows, alternating server and order round by round, so that
drift in the machine's load falls on both alike and each audited window has an unaudited twin
next to it. Audited, every call appends its data-access record to the server's audit journal
before it answers, and the audit writer writes the journal into the audit log and seals it once a
second (kaifang.audit.journal).

The report gives requests per second per question and in total, the cost (1 − on/off) over the
whole run and as the median of the paired windows (robust to a window another process disturbed),
p50 latencies, the server process's CPU time per request (user + system, from /proc: the writer
thread's batches and sealing included), which a busy machine disturbs much less than throughput,
and the records the audited server wrote. Target (issue 6): a cost under 10%.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_bench import publish_version, wait_for_copies
from search_bench import dedicated_postgres, free_port, server_env
from table import generate

from kaifang.app import build_platform
from kaifang.audit.models import AuditRecord
from kaifang.settings import load_settings

TARGET = 0.10
MODES = ("on", "off")


@dataclass(frozen=True)
class Question:
    label: str
    path: str  # "data" or "download"
    params: dict[str, str]


QUESTIONS = [
    Question("data: equality filter, 100 rows", "data", {"district": "海淀区", "limit": "100"}),
    Question(
        "data: count with two filters", "data", {"district": "海淀区", "category": "类别07", "limit": "0"}
    ),
    Question(
        "data: range filter, sort, top 20",
        "data",
        {"amount__gte": "1000", "amount__lte": "2000", "sort": "-amount", "limit": "20"},
    ),
    Question("download: CSV of two filters", "download", {"district": "海淀区", "category": "类别07"}),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Server:
    mode: str
    base: str
    pid: int
    home: Path
    database_url: str
    rid: int
    key: str

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server process so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # fields from the third on (the name may hold spaces)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(mode: str, parquet: Path, database_url: str) -> Iterator[Server]:
    """`kaifang serve` on a home of its own with auditing `mode` ("on" or "off")."""
    home = Path(tempfile.mkdtemp(prefix=f"kaifang-audit-bench-{mode}-"))
    try:
        with ExitStack() as stack:
            url = stack.enter_context(dedicated_postgres(database_url)) if database_url else ""
            rid, key, copies = publish_version(home, parquet, database_url=url, title="审计开销基准表")
            env = server_env(home, url) | {
                "KAIFANG_AUDIT_ENABLED": "true" if mode == "on" else "false",
                "KAIFANG_API_DAILY_QUOTA": "0",
            }
            port = free_port()
            with (home / "server.log").open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "kaifang.cli", "serve", "--port", str(port)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            stack.callback(_stop, proc)
            found = Server(mode, f"http://127.0.0.1:{port}", proc.pid, home, url, rid, key)
            _wait_healthy(found, proc)
            ask(found, QUESTIONS[0])  # the first query starts the query copy of a large table
            wait_for_copies(copies)
            yield found
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _wait_healthy(target: Server, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kaifang serve exited: {(target.home / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"{target.base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("kaifang serve did not answer /healthz within 60 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ask(target: Server, q: Question, client: httpx.Client | None = None) -> None:
    url = f"{target.base}/api/v1/resources/{target.rid}/{q.path}"
    response = (client or httpx).get(url, params=q.params, headers={"Authorization": f"Bearer {target.key}"})
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")


@dataclass
class Tally:
    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0  # server CPU seconds
    latencies: list[float] = field(default_factory=list)
    per_round: list[float] = field(default_factory=list)  # requests per second of each round

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per request."""
        return self.cpu / self.requests * 1000 if self.requests else 0.0

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        self.cpu += other.cpu
        self.latencies += other.latencies
        self.per_round += other.per_round


def hammer(target: Server, q: Question, clients: int, seconds: float, tally: Tally) -> None:
    """`clients` threads asking `q` as fast as answers come for `seconds`."""
    latencies: list[float] = []
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + seconds

    def worker() -> None:
        mine = []
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                ask(target, q, client)
                mine.append((time.perf_counter() - t0) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    cpu = target.cpu_seconds()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    time.sleep(1.2)  # the audit writer's batch of these requests is part of their cost
    tally.add(
        Tally(len(latencies), elapsed, target.cpu_seconds() - cpu, latencies, [len(latencies) / elapsed])
    )


def measure(servers: dict[str, Server], args: argparse.Namespace) -> dict[str, dict[str, Tally]]:
    for target in servers.values():  # warm-up: every question a few times on both
        for q in QUESTIONS:
            for _ in range(5):
                ask(target, q)
    tallies = {q.label: {mode: Tally() for mode in MODES} for q in QUESTIONS}
    for round_ in range(args.rounds):
        order = MODES if round_ % 2 == 0 else MODES[::-1]
        log(f"round {round_ + 1} of {args.rounds} ({' then '.join(order)}) …")
        for q in QUESTIONS:
            for mode in order:
                hammer(servers[mode], q, args.clients, args.seconds, tallies[q.label][mode])
    return tallies


def records_written(target: Server) -> dict[str, int]:
    platform = build_platform(load_settings(mode="dev", home=target.home, database_url=target.database_url))
    try:
        with platform.db.session() as db:
            rows = db.execute(select(AuditRecord.kind, func.count()).group_by(AuditRecord.kind)).all()
    finally:
        platform.db.dispose()
    return {kind: n for kind, n in rows}


def report(args: argparse.Namespace, tallies: dict[str, dict[str, Tally]], facts: dict[str, Any]) -> str:
    engine = "PostgreSQL" if args.database_url else "SQLite"
    control = " (control: both servers with auditing off)" if args.control else ""
    lines = [
        f"#### Cost of auditing{control}, data API, {args.rows:,} rows, {engine}, "
        f"{args.clients} client threads, "
        f"{args.rounds} interleaved rounds of {args.seconds:g} s per question and mode",
        "",
        f"Load average {facts['load_before']:.1f} before and {facts['load_after']:.1f} after the run; "
        f"{os.cpu_count()} CPUs, clients on the same machine. Records written by the audited server: "
        f"{facts['on'].get('access', 0):,} data accesses, {facts['on'].get('request', 0):,} requests; "
        f"by the other: {facts['off'].get('access', 0):,} and {facts['off'].get('request', 0):,}.",
        "",
        "| question | audit on (req/s) | audit off (req/s) | cost | cost, median of paired windows "
        "(min–max) | p50 on / off (ms) | server CPU per request on / off (ms) | CPU cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total = {mode: Tally() for mode in MODES}
    for label, by_mode in tallies.items():
        lines.append(_row(label, by_mode["on"], by_mode["off"]))
        for mode in MODES:
            total[mode].add(by_mode[mode])
    lines.append(_row("**all questions**", total["on"], total["off"]))
    on, off = total["on"], total["off"]
    verdicts = {
        "throughput over the run": 1 - on.rate / off.rate,
        "throughput, median of paired windows": _paired(on, off),
        "server CPU per request": on.cpu_ms / off.cpu_ms - 1,
    }
    said = "; ".join(f"{k} {v:.1%} ({'met' if v < TARGET else 'missed'})" for k, v in verdicts.items())
    lines += ["", f"Target: a cost under {TARGET:.0%} — {said}."]
    return "\n".join(lines)


def _paired(on: Tally, off: Tally) -> float:
    return statistics.median(1 - a / b for a, b in zip(on.per_round, off.per_round, strict=True))


def _row(label: str, on: Tally, off: Tally) -> str:
    pairs = [1 - a / b for a, b in zip(on.per_round, off.per_round, strict=True)]
    return (
        f"| {label} | {on.rate:,.1f} | {off.rate:,.1f} | {1 - on.rate / off.rate:.1%} "
        f"| {_paired(on, off):.1%} ({min(pairs):.1%} – {max(pairs):.1%}) "
        f"| {statistics.median(on.latencies):.1f} / {statistics.median(off.latencies):.1f} "
        f"| {on.cpu_ms:.2f} / {off.cpu_ms:.2f} | {on.cpu_ms / off.cpu_ms - 1:.1%} |"
    )


def run(args: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory(prefix="kaifang-audit-bench-") as work:
        parquet = Path(work) / "table.parquet"
        log(f"writing {args.rows:,} rows as a version file …")
        generate(parquet, args.rows, "ingest-delta")
        with ExitStack() as stack:
            # --control: both servers with auditing off, to see how far two equal servers differ
            # (the noise floor of the "cost" columns on this machine)
            servers = {
                mode: stack.enter_context(server("off" if args.control else mode, parquet, args.database_url))
                for mode in MODES
            }
            facts: dict[str, Any] = {"load_before": os.getloadavg()[0]}
            tallies = measure(servers, args)
            facts["load_after"] = os.getloadavg()[0]
            time.sleep(1.5)  # the audit writer's last batch
            for mode, target in servers.items():
                facts[mode] = records_written(target)
    return report(args, tallies, facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000, help="table size (default 50,000)")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds (default 12)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per question, mode and round (default 2)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (default 4)")
    parser.add_argument(
        "--database-url", default="", help="PostgreSQL server for the two databases (default: SQLite homes)"
    )
    parser.add_argument("--output", type=Path, help="also write the markdown report to this file")
    parser.add_argument(
        "--control",
        action="store_true",
        help="both servers with auditing off: the cost columns then show the run's noise floor",
    )
    args = parser.parse_args(argv)
    output = run(args)
    print(output)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(output + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
