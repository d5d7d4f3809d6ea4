"""`kaifang ...`: serve the platform, load the demo city, migrate, run the job worker, issue API keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

if TYPE_CHECKING:
    from kaifang.app import Platform


def _platform() -> Platform:
    from kaifang.app import build_platform, prepare_database
    from kaifang.settings import load_settings

    platform = build_platform(load_settings())
    prepare_database(platform)
    return platform


def cmd_serve(args: argparse.Namespace) -> int:
    from kaifang.app import create_app

    serve(create_app(), args.host, args.port, args.access_log)
    return 0


def serve(app: Any, host: str, port: int, access_log: bool) -> None:
    """uvicorn without its per-request console line by default: every request is in the audit
    log already, and formatting that line took an eighth of the event loop's time per API call."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, access_log=access_log)


def cmd_demo(args: argparse.Namespace) -> int:
    from kaifang.demo.seed import home_has_data, seed

    platform = _platform()
    seeded = False
    with platform.db.session() as db:
        if home_has_data(db):
            print(
                f"{platform.settings.home} 中已有数据：演示数据只载入空的平台。直接启动：kaifang serve",
                file=sys.stderr,
            )
            if not args.serve_anyway:
                return 1
        else:
            counts = seed(db)
            print(
                f"已载入演示城市：{counts['organisations']} 个提供单位，{counts['users']} 个账号，"
                f"{counts['entries']} 条目录。演示账号密码均为 kaifang-demo。"
            )
            seeded = True
    if seeded:  # after the commit above: the ingest job reads the entries in its own sessions
        from kaifang.demo.datasets import seed_resources

        seed_resources(platform, small=args.small)
    platform.db.dispose()
    if args.no_serve:
        return 0
    print(f"打开 http://{args.host}:{args.port}/ 访问平台")
    return cmd_serve(args)


def cmd_migrate(args: argparse.Namespace) -> int:
    platform = _platform()
    print(f"数据库已升级到最新结构：{platform.db.engine.url.render_as_string(hide_password=True)}")
    return 0


def cmd_apikey_create(args: argparse.Namespace) -> int:
    from kaifang.accounts.models import User
    from kaifang.accounts.permissions import Actor
    from kaifang.accounts.service import issue_api_key

    platform = _platform()
    with platform.db.session() as db:
        user = db.scalar(select(User).where(User.username == args.username.lower()))
        if user is None or not user.is_active:
            print(f"用户不存在或已停用：{args.username}", file=sys.stderr)
            return 1
        _key, plain = issue_api_key(db, Actor(username="cli"), user.id, args.name)
    print(plain)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run background jobs from the Redis queue (KAIFANG_JOBS_BACKEND=redis) until stopped."""
    from kaifang.tasks import run_worker

    _platform().db.dispose()  # migrated before any job touches the database
    run_worker(args.workers)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Walk the audit hash chain (archive files first) and its signed checkpoints; exit 1 naming
    the first bad record or archive file."""
    from kaifang.accounts.permissions import SYSTEM
    from kaifang.audit.inspection import verify_chain

    platform = _platform()
    platform.audit.flush()  # first the journaled records of stopped processes, sealed (journal.py)
    with platform.db.session() as db:
        result = verify_chain(db, SYSTEM, platform.audit.key, platform.audit.archive)
    for note in result.notes:
        print(note, file=sys.stderr)
    if result.ok:
        print(
            f"审计记录完整：已核验 {result.records} 条链条记录（其中 {result.archived} 条在 "
            f"{result.archive_files} 个归档文件中）、{result.checkpoints} 个签名检查点"
            f"（另有 {result.unsealed} 条新记录待封存）"
        )
        return 0
    print(f"审计记录被篡改：{result.problem}", file=sys.stderr)
    return 1


def cmd_audit_archive(args: argparse.Namespace) -> int:
    """Move audit records past the retention into archive files under KAIFANG_HOME/audit-archive.

    The server does this once a day by itself; where several hosts serve the platform, set
    KAIFANG_AUDIT_ARCHIVE_DAILY=false and run it from cron on one host, e.g.
    `30 3 * * *  KAIFANG_HOME=/srv/kaifang kaifang audit archive`.
    """
    from kaifang.audit.archive import ArchiveRefused
    from kaifang.db import utcnow

    platform = _platform()
    archive = platform.audit.archive
    try:
        moved = archive.run(platform.db)
    except ArchiveRefused as exc:
        print(f"未归档：{exc}", file=sys.stderr)
        return 1
    for m in moved:
        print(
            f"已归档 {m.records} 条记录（第 {m.first_seq}–{m.last_seq} 号，{m.first_at[:10]} 至 "
            f"{m.last_at[:10]}）：{archive.directory / m.file}，{m.size / 1024:.1f} KiB"
        )
    if not moved:
        until = archive.until(utcnow()).date().isoformat()
        print(f"没有需要归档的记录：保留期 {archive.retention_days} 天，{until} 之前的整月记录才移入归档")
    return 0


def cmd_desensitize_scan(args: argparse.Namespace) -> int:
    """Scan a table file for personal and sensitive columns, as an upload is scanned; no database."""
    import json
    from pathlib import Path

    from kaifang.desensitize.detect import LABELS, scan_file
    from kaifang.errors import InvalidInput

    path = Path(args.file)
    if not path.is_file():
        print(f"文件不存在：{path}", file=sys.stderr)
        return 1
    try:
        findings = scan_file(path, args.sheet)
    except InvalidInput as exc:
        print(exc.message, file=sys.stderr)
        return 1
    if args.json:
        report = {"file": str(path), "sheet": args.sheet, "columns": [f.to_dict() for f in findings]}
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    for f in findings:
        embedded = "、".join(f"{LABELS[k]} {n} 处" for k, n in f.embedded.items())
        print(
            f"{f.column}\t{f.label}\t置信度 {f.confidence:.2f}\t匹配比例 {f.match_ratio:.1%}\t"
            f"样本 {f.sample_count}" + (f"\t文本中含 {embedded}" if embedded else "")
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaifang", description="Kaifang 公共数据开放平台")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_ in (("serve", "启动平台"), ("demo", "载入演示城市并启动")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument(
            "--access-log", action="store_true", help="在控制台逐条输出请求（审计记录中已有每个请求）"
        )
        p.set_defaults(func=cmd_serve if name == "serve" else cmd_demo)
        if name == "demo":
            p.add_argument("--no-serve", action="store_true", help="只载入数据，不启动")
            p.add_argument("--serve-anyway", action="store_true", help="已有数据时不载入，直接启动")
            p.add_argument(
                "--small", action="store_true", help="不载入百万行的大数据资源（测试用，几秒完成）"
            )
    sub.add_parser("migrate", help="升级数据库结构").set_defaults(func=cmd_migrate)
    audit = sub.add_parser("audit", help="审计记录").add_subparsers(dest="audit_command", required=True)
    audit.add_parser("verify", help="核验审计记录的哈希链与签名检查点").set_defaults(func=cmd_audit_verify)
    audit.add_parser(
        "archive", help="把超过保留期的审计记录移入归档文件（服务每天自动运行一次）"
    ).set_defaults(func=cmd_audit_archive)
    worker = sub.add_parser("worker", help="运行后台任务（生产部署：KAIFANG_JOBS_BACKEND=redis）")
    worker.add_argument("--workers", type=int, default=2, help="并行任务进程数（默认 2）")
    worker.set_defaults(func=cmd_worker)
    desensitize = sub.add_parser("desensitize", help="脱敏").add_subparsers(
        dest="desensitize_command", required=True
    )
    scan = desensitize.add_parser("scan", help="识别表格文件中的个人信息和敏感数据列（不连接数据库）")
    scan.add_argument("file", help="CSV、XLSX 等表格文件")
    scan.add_argument("--sheet", help="工作表名称（默认第一个有数据的工作表）")
    scan.add_argument("--json", action="store_true", help="以 JSON 输出")
    scan.set_defaults(func=cmd_desensitize_scan)
    apikey = sub.add_parser("apikey", help="API 密钥").add_subparsers(dest="apikey_command", required=True)
    create = apikey.add_parser("create", help="为用户新建 API 密钥并打印（只显示一次）")
    create.add_argument("username")
    create.add_argument("--name", default="命令行创建")
    create.set_defaults(func=cmd_apikey_create)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
        print(f"配置有误，平台未启动：{problems}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
