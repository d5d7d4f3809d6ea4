"""Reading posted HTML forms."""

from __future__ import annotations

from starlette.datastructures import FormData

MAX_TEXT = 2000


def form_text(form: FormData, key: str, limit: int = MAX_TEXT) -> str:
    """One text field of a posted form; absent or a file counts as empty."""
    value = form.get(key)
    return value[:limit] if isinstance(value, str) else ""
