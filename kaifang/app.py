"""Builds the ASGI app: settings → services → routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kaifang import migrate
from kaifang.audit.middleware import RequestAuditMiddleware
from kaifang.audit.writer import AuditWriter
from kaifang.datastore import answers, engines, query
from kaifang.datastore.storage import FileStore, LocalFileStore
from kaifang.db import Database
from kaifang.mail import Mailer, make_mailer
from kaifang.notify import delivery as notify_delivery
from kaifang.ratelimit import RateLimiter
from kaifang.settings import Settings, load_settings
from kaifang.tasks import Jobs, make_jobs
from kaifang.web import errors
from kaifang.web.health import Metrics
from kaifang.web.security import CSRFMiddleware, SecurityHeadersMiddleware
from kaifang.web.templating import Site, make_environment

STATIC = Path(__file__).parent / "web" / "static"


@dataclass
class Platform:
    """The services one app instance runs on; the same code runs embedded or distributed."""

    settings: Settings
    db: Database
    mailer: Mailer
    limiter: RateLimiter
    templates: jinja2.Environment
    site: Site
    store: FileStore
    jobs: Jobs
    audit: AuditWriter
    metrics: Metrics


def build_platform(settings: Settings) -> Platform:
    db = Database(settings.db_url)
    s = settings
    store = LocalFileStore(s.files_dir)
    query.configure(s.query_memory_mb, s.home / "tmp" / "duckdb")
    engines.configure(row_copies=s.row_copies)
    answers.configure(s.data_cache_mb)
    platform = Platform(
        settings=s,
        db=db,
        mailer=make_mailer(s),
        limiter=RateLimiter(s.ratelimit_storage_url),
        templates=make_environment(s),
        store=store,
        jobs=make_jobs(s, db, store),
        metrics=Metrics(),
        audit=AuditWriter.from_settings(db, s),
        site=Site(
            s.site_name,
            s.site_sponsor,
            s.site_organizer,
            s.site_contact,
            s.site_code,
            s.site_icp,
            s.site_police_record,
        ),
    )
    notify_delivery.install(platform)  # notification e-mail after commit, unread count in the header
    return platform


def prepare_database(platform: Platform) -> None:
    """Migrate to the newest schema and load the default taxonomies into an empty database."""
    from kaifang.catalog.service import ensure_default_taxonomies

    migrate.upgrade(platform.db.engine)
    with platform.db.session() as session:
        ensure_default_taxonomies(session)


def create_app(settings: Settings | None = None, *, prepare: bool = True) -> FastAPI:
    from kaifang.access import api as access_api
    from kaifang.access import report_api, report_views
    from kaifang.access import views as access_views
    from kaifang.accounts import api as accounts_api
    from kaifang.accounts import org_views
    from kaifang.accounts import views as accounts_views
    from kaifang.audit import views as audit_views
    from kaifang.catalog import api as catalog_api
    from kaifang.catalog import views as catalog_views
    from kaifang.catalog import vocabulary_views
    from kaifang.catalog import workspace_views as workspace
    from kaifang.datastore import api as datastore_api
    from kaifang.datastore import views as datastore_views
    from kaifang.desensitize import api as desensitize_api
    from kaifang.desensitize import views as desensitize_views
    from kaifang.notify import api as notify_api
    from kaifang.notify import views as notify_views
    from kaifang.web import admin_views, health, views

    settings = settings or load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    platform = build_platform(settings)
    if prepare:
        prepare_database(platform)
        platform.jobs.resume()  # jobs a crash or a kill interrupted

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        platform.audit.start()
        yield
        platform.jobs.shutdown()  # a clean stop finishes the running job; queued ones resume next start
        platform.audit.stop()  # writes the request records still buffered

    app = FastAPI(
        title="开放平台数据接口 Kaifang API",
        version="1",
        description=(
            f"{settings.site_name}的数据目录与数据接口。"
            '错误以 {"error": {"code", "message"}} 返回，message 为中文说明。'
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # The upload limit plus room for the multipart envelope; a larger body is refused as it arrives.
        max_body_size=settings.upload_max_mb * 1024 * 1024 + 1024 * 1024,
    )
    app.state.kf = platform
    errors.install(app)
    app.add_middleware(CSRFMiddleware, secret=settings.secret_key, reject=errors.csrf_reject)
    app.add_middleware(SecurityHeadersMiddleware, secure_cookies=settings.cookie_secure)
    app.add_middleware(
        RequestAuditMiddleware, writer=platform.audit, metrics=platform.metrics
    )  # outermost: sees every answer
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    routers = (  # matched in this order, one by one: the busiest routes first
        health,
        datastore_api,
        catalog_api,
        accounts_api,
        views,
        accounts_views,
        catalog_views,
        workspace,
        datastore_views,
        org_views,
        admin_views,
        vocabulary_views,
        audit_views,
        access_api,
        access_views,
        report_api,
        report_views,
        notify_api,
        notify_views,
        desensitize_api,
        desensitize_views,
    )
    for module in routers:
        app.include_router(module.router)
    return app
