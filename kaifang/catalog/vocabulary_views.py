"""管理后台 · 检索词表: the regulator and the operator extend and correct the search vocabulary.

Rules live in kaifang.catalog.vocabulary; this reads the form, calls it and renders.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from kaifang.accounts.permissions import Actor
from kaifang.catalog import service, vocabulary
from kaifang.catalog.models import TaxonomyKind, VocabularyEntry
from kaifang.catalog.vocabulary import VocabularyForm
from kaifang.db import MAX_ID
from kaifang.errors import InvalidInput
from kaifang.web.forms import form_text
from kaifang.web.security import DB, CurrentActor
from kaifang.web.templating import redirect, render, settings_of

router = APIRouter(include_in_schema=False)
PAGE = "/admin/vocabulary"
FORM_TEXT = 1000


def _form_of(row: VocabularyEntry | None) -> VocabularyForm:
    if row is None:
        return VocabularyForm(terms="", expansions="")
    return VocabularyForm(" ".join(row.terms), " ".join(row.expansions), row.theme, row.is_active)


def _render(
    request: Request,
    db: Session,
    actor: Actor,
    *,
    q: str = "",
    theme: str = "",
    editing: int | None = None,
    form: VocabularyForm | None = None,
    error: InvalidInput | None = None,
) -> Response:
    rows = vocabulary.list_vocabulary(db, actor, q, theme)
    active, total = vocabulary.vocabulary_counts(db, actor)
    if form is None:
        form = _form_of(vocabulary.get_vocabulary_entry(db, actor, editing) if editing else None)
    context = {
        "rows": rows,
        "active": active,
        "total": total,
        "q": q,
        "theme": theme,
        "themes": [(t.code, t.name) for t in service.list_terms(db, TaxonomyKind.theme)],
        "names": service.term_names(db),
        "form": form,
        "editing": editing,
        "errors": error.fields if error else {},
        "error_message": error.message if error else "",
        "section": "vocabulary",
    }
    return render(request, "admin/vocabulary.html", context, status=error.status if error else 200)


@router.get(PAGE)
def vocabulary_page(
    request: Request,
    db: DB,
    actor: CurrentActor,
    q: Annotated[str, Query(max_length=50)] = "",
    theme: Annotated[str, Query(max_length=20)] = "",
    edit: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """Every group of the search vocabulary, found by word or theme; the form adds or edits one."""
    return _render(request, db, actor, q=q.strip(), theme=theme, editing=edit)


@router.post(PAGE)
async def save_group(request: Request, db: DB, actor: CurrentActor) -> Response:
    """Add a group, or save the group named by the form's `id`."""
    posted = await request.form()
    raw_id = form_text(posted, "id", 12)
    editing = int(raw_id) if raw_id.isdigit() and 0 < int(raw_id) <= MAX_ID else None
    form = VocabularyForm(
        terms=form_text(posted, "terms", FORM_TEXT),
        expansions=form_text(posted, "expansions", FORM_TEXT),
        theme=form_text(posted, "theme", 20),
        is_active=form_text(posted, "is_active", 5) == "1",
    )
    try:
        row = vocabulary.save_vocabulary(db, actor, form, editing)
    except InvalidInput as exc:
        db.rollback()
        return _render(request, db, actor, editing=editing, form=form, error=exc)
    message = f"已保存检索词组：{'、'.join(row.terms[:3])} → {'、'.join(row.expansions[:3])}"
    return redirect(f"{PAGE}#v-{row.id}", settings_of(request), message)
