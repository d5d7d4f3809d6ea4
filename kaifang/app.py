"""Builds the ASGI app: settings → services → routers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kaifang import migrate
from kaifang.db import Database
from kaifang.mail import Mailer, make_mailer
from kaifang.ratelimit import RateLimiter
from kaifang.settings import Settings, load_settings
from kaifang.web import errors
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


def build_platform(settings: Settings) -> Platform:
    db = Database(settings.db_url)
    s = settings
    return Platform(
        settings=s,
        db=db,
        mailer=make_mailer(s),
        limiter=RateLimiter(s.ratelimit_storage_url),
        templates=make_environment(s),
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


def prepare_database(platform: Platform) -> None:
    """Migrate to the newest schema and load the default taxonomies into an empty database."""
    from kaifang.catalog.service import ensure_default_taxonomies

    migrate.upgrade(platform.db.engine)
    with platform.db.session() as session:
        ensure_default_taxonomies(session)


def create_app(settings: Settings | None = None, *, prepare: bool = True) -> FastAPI:
    from kaifang.accounts import api as accounts_api
    from kaifang.accounts import org_views
    from kaifang.accounts import views as accounts_views
    from kaifang.catalog import api as catalog_api
    from kaifang.catalog import views as catalog_views
    from kaifang.catalog import workspace_views as workspace
    from kaifang.web import admin_views, views

    settings = settings or load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    platform = build_platform(settings)
    if prepare:
        prepare_database(platform)
    app = FastAPI(
        title="开放平台数据接口 Kaifang API",
        version="1",
        description=(
            f"{settings.site_name}的数据目录与数据接口。"
            '错误以 {"error": {"code", "message"}} 返回，message 为中文说明。'
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.kf = platform
    errors.install(app)
    app.add_middleware(CSRFMiddleware, secret=settings.secret_key, reject=errors.csrf_reject)
    app.add_middleware(SecurityHeadersMiddleware, secure_cookies=settings.cookie_secure)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    routers = (
        catalog_api,
        accounts_api,
        views,
        accounts_views,
        catalog_views,
        workspace,
        org_views,
        admin_views,
    )
    for module in routers:
        app.include_router(module.router)
    return app
