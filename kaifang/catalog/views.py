"""Public catalog pages: search with facets, an entry's page, the providers and their catalogs."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from kaifang.accounts import orgs
from kaifang.accounts.models import ORG_TYPE_LABELS, Organisation
from kaifang.accounts.permissions import Actor
from kaifang.catalog import search, service
from kaifang.catalog.api import facet_filters
from kaifang.catalog.models import ACCESS_METHOD_LABELS, Entry, EntryStatus, OpenType
from kaifang.catalog.related import related_entries
from kaifang.datastore.chart import chart_data
from kaifang.datastore.display import resource_panels
from kaifang.datastore.service import can_read_data
from kaifang.errors import NotFound, RateLimited, ServiceError
from kaifang.web.errors import error_body
from kaifang.web.security import DB, CurrentActor, client_ip, throttle
from kaifang.web.templating import CITY_TZ, render

router = APIRouter(include_in_schema=False)

SORTS = ("relevance", "newest")
MAX_PAGE = 10_000
MAX_QUERY = 200
EXCERPT = 160
_ID = re.compile(r"^[0-9]{1,9}$")


# --- query parameters -----------------------------------------------------------------------------


def clean_text(value: str | None, limit: int) -> str:
    """User text without NUL characters (PostgreSQL refuses them), trimmed and cut to `limit`."""
    return (value or "").replace("\x00", "").strip()[:limit]


def int_param(value: str | None, default: int, low: int, high: int) -> int:
    """A whole number from a query string; anything else, or out of range, gives the default."""
    try:
        number = int(value or "")
    except ValueError:
        return default
    return number if low <= number <= high else default


def path_id(value: str) -> int:
    """An id from the URL path; anything that is not a plausible id is simply not found."""
    if not _ID.match(value):
        raise NotFound("未找到该数据目录，请检查地址是否正确")
    return int(value)


@dataclass
class SearchState:
    """The search the page shows, and the URLs of every change to it (facet, sort, page)."""

    q: str = ""
    sort: str = "relevance"
    page: int = 1
    page_size: int | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)

    def url(
        self, *, filters: dict[str, list[str]] | None = None, sort: str | None = None, page: int = 1
    ) -> str:
        chosen = self.filters if filters is None else filters
        params: list[tuple[str, str | int]] = [("q", self.q)] if self.q else []
        params += [(f, v) for f in search.FACETS for v in chosen.get(f, [])]
        if (sort or self.sort) != "relevance":
            params.append(("sort", sort or self.sort))
        if self.page_size:
            params.append(("page_size", self.page_size))
        if page > 1:
            params.append(("page", page))
        return "/datasets" + ("?" + urlencode(params) if params else "")

    def toggle(self, facet: str, value: str) -> str:
        """The URL that adds the value to the facet's filter, or removes it if selected."""
        values = self.filters.get(facet, [])
        changed = [v for v in values if v != value] if value in values else [*values, value]
        return self.url(filters={**self.filters, facet: changed})

    def without_filters(self) -> str:
        return self.url(filters={})

    def sort_url(self, sort: str) -> str:
        return self.url(sort=sort)

    def page_url(self, page: int) -> str:
        return self.url(page=page)

    def query_url(self, q: str) -> str:
        """The same search with another query ("did you mean")."""
        return replace(self, q=q).url()


def search_state(request: Request) -> SearchState:
    params = request.query_params
    settings = request.app.state.kf.settings
    filters = {f: [clean_text(v, 100) for v in values] for f, values in facet_filters(request).items()}
    page_size = int_param(params.get("page_size"), 0, 1, settings.max_page_size) or None
    sort = params.get("sort") or ""
    return SearchState(
        q=clean_text(params.get("q"), MAX_QUERY),
        sort=sort if sort in SORTS else "relevance",
        page=int_param(params.get("page"), 1, 1, MAX_PAGE),
        page_size=page_size,
        filters={f: [v for v in values if v] for f, values in filters.items() if any(values)},
    )


def highlight(text: str, words: list[str]) -> Markup:
    """The text, escaped, with the query words marked."""
    words = sorted({w for w in words if w}, key=len, reverse=True)
    if not words:
        return escape(text)
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    parts: list[Markup] = []
    pos = 0
    for match in pattern.finditer(text):
        parts += [escape(text[pos : match.start()]), Markup("<mark>%s</mark>") % match.group()]
        pos = match.end()
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


def excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


# --- pages ----------------------------------------------------------------------------------------


@router.get("/datasets")
def datasets(request: Request, db: DB, actor: CurrentActor) -> Response:
    """数据目录: the same search as GET /api/v1/datasets, with facets, sort and pages."""
    settings = request.app.state.kf.settings
    state = search_state(request)
    names = service.term_names(db)
    result = search.search_catalog(
        db,
        actor,
        state.q,
        state.filters,
        sort=state.sort,
        page=state.page,
        page_size=state.page_size or settings.page_size,
        labels=names,
    )
    context = {
        "state": state,
        "result": result,
        "names": names,
        "facet_labels": search.FACET_LABELS,
        "mark": lambda text: highlight(text, result.words),
        "excerpt": excerpt,
        "browse_themes": [] if result.count else _theme_counts(db, actor),
    }
    return render(request, "catalog/search.html", context)


def _theme_counts(db: Session, actor: Actor) -> list[search.FacetValue]:
    """Every theme with entries the actor may see, most first: a way on when a search found nothing."""
    return search.search_catalog(db, actor, "", page_size=1).facets["theme"]


def citation(entry: Entry, site_name: str, url: str) -> str:
    """引用方式 (Art. 24): source, title, platform, address and the date of access."""
    today = datetime.now(CITY_TZ).strftime("%Y-%m-%d")
    return f"数据来源：{entry.provider.name}，《{entry.title}》，{site_name}，{url}，访问日期：{today}"


@router.get("/datasets/{entry_id}")
def entry_page(request: Request, entry_id: str, db: DB, actor: CurrentActor) -> Response:
    """An entry's page: every Art. 14 field, what its open type means, how to cite and call it."""
    settings = request.app.state.kf.settings
    entry = service.get_entry(db, actor, path_id(entry_id))
    url = f"{settings.base_url.rstrip('/')}/datasets/{entry.id}"
    context = {
        "entry": entry,
        "names": service.term_names(db),
        "url": url,
        "api_url": f"{settings.base_url.rstrip('/')}/api/v1/datasets/{entry.id}",
        "citation": citation(entry, settings.site_name, url),
        "access_methods": "、".join(ACCESS_METHOD_LABELS.get(a, a) for a in entry.access_methods or []),
        "is_staff": actor.is_member(entry.provider_id),
        "is_supervisor": actor.is_supervisor,
        "is_published": entry.status == EntryStatus.published,
        "is_conditional": entry.open_type == OpenType.conditional,
        "is_closed": entry.open_type == OpenType.closed,
        "resources": resource_panels(db, actor, entry, request.app.state.kf.store),
        "can_read_data": can_read_data(actor, entry),
        "base_url": settings.base_url.rstrip("/"),
        "related": related_entries(db, actor, entry),
    }
    return render(request, "catalog/entry.html", context)


@router.get("/datasets/{entry_id}/resources/{resource_id}/chart.json")
def resource_chart(
    request: Request, entry_id: str, resource_id: str, db: DB, actor: CurrentActor
) -> Response:
    """The entry page's chart figures (`type`, `x`, `agg`, `y`), for page visitors without an API
    key; always JSON, errors included, since only the page's script reads it."""
    kf = request.app.state.kf
    try:
        throttle(kf, "ip", client_ip(request))  # a group-by per call: the same limit as the data API
        params = {k: request.query_params[k] for k in ("type", "x", "agg", "y") if k in request.query_params}
        chart = chart_data(db, actor, kf.store, path_id(entry_id), path_id(resource_id), params)
    except ServiceError as exc:
        response = JSONResponse(error_body(exc.code, exc.message, exc.fields), status_code=exc.status)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return JSONResponse(asdict(chart))


@dataclass
class ProviderRow:
    org: Organisation
    count: int


def _provider_counts(db: Session, actor: Actor) -> dict[str, int]:
    """Published entries each provider has that the actor may see (slug → count)."""
    result = search.search_catalog(db, actor, "", page_size=1)
    return {fv.value: fv.count for fv in result.facets["provider"]}


@router.get("/providers")
def providers(request: Request, db: DB, actor: CurrentActor) -> Response:
    """数据提供方: every active provider, grouped by type, with its count of published entries."""
    counts = _provider_counts(db, actor)
    rows = [ProviderRow(org, counts.get(org.slug, 0)) for org in orgs.list_orgs(db)]
    rows.sort(key=lambda r: (-r.count, r.org.name))
    groups = [
        (str(kind), label, [r for r in rows if r.org.org_type == kind])
        for kind, label in ORG_TYPE_LABELS.items()
    ]
    context = {
        "groups": [g for g in groups if g[2]],
        "provider_count": len(rows),
        "entry_count": sum(counts.values()),
    }
    return render(request, "catalog/providers.html", context)


@router.get("/providers/{slug}")
def provider_page(request: Request, slug: str, db: DB, actor: CurrentActor) -> Response:
    """A provider: who it is, how to reach it, its published catalog; its staff list for insiders."""
    if not orgs.SLUG_RE.match(slug):
        raise NotFound("未找到该数据提供单位")
    settings = request.app.state.kf.settings
    org = orgs.get_org_by_slug(db, slug)
    page = int_param(request.query_params.get("page"), 1, 1, MAX_PAGE)
    names = service.term_names(db)
    result = search.search_catalog(
        db,
        actor,
        "",
        {"provider": [org.slug]},
        sort="newest",
        page=page,
        page_size=settings.page_size,
        labels=names,
    )
    context = {
        "org": org,
        "result": result,
        "names": names,
        "show_staff": actor.is_member(org.id) or actor.is_supervisor,
        "page_url": lambda p: f"/providers/{org.slug}" + (f"?page={p}" if p > 1 else ""),
    }
    return render(request, "catalog/provider.html", context)
