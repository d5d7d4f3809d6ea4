"""The usage agreement as PDF (Art. 28: kept as signed, downloadable): the stored text exactly as
signed, line by line, then the signature block — who signed, when, and the SHA-256 of the text
each side signed. Chinese is set in reportlab's built-in CID font STSong-Light, which PDF readers
supply themselves, so no font file ships or downloads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy.orm import Session

from kaifang.access.grants import CITY_ZONE
from kaifang.access.models import Agreement
from kaifang.accounts.models import Organisation, User

FONT = "STSong-Light"
SIZE = 10.5
LEADING = 16
MARGIN = 56  # points; about 2 cm
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


@dataclass(frozen=True)
class Signature:
    """One side's signature as the PDF states it."""

    side: str  # 甲方 / 乙方 and the role
    signer: str  # who signed, or "" while unsigned
    signed_at: datetime | None
    sha256: str


def signatures(db: Session, agreement: Agreement) -> list[Signature]:
    """The provider's and the user's signatures, with the names of the accounts that signed."""
    application = agreement.application
    provider = db.get(Organisation, application.provider_id)
    assert provider is not None  # foreign key

    def name(user_id: int | None, suffix: str = "") -> str:
        user = db.get(User, user_id) if user_id else None
        return f"{user.display_name}（账号 {user.username}）{suffix}" if user else ""

    return [
        Signature(
            "数据提供方（甲方）",
            name(agreement.provider_signed_by, f"，代表{provider.name}"),
            agreement.provider_signed_at,
            agreement.provider_signed_sha256,
        ),
        Signature(
            "数据使用方（乙方）",
            name(agreement.user_signed_by),
            agreement.user_signed_at,
            agreement.user_signed_sha256,
        ),
    ]


def _wrap(line: str, width: float) -> Iterator[str]:
    """Splits a line at the page width, character by character (Chinese has no word spaces)."""
    start = 0
    for end in range(1, len(line) + 1):
        if pdfmetrics.stringWidth(line[start:end], FONT, SIZE) > width:
            yield line[start : end - 1]
            start = end - 1
    yield line[start:]


def _signature_lines(agreement: Agreement, signed: list[Signature]) -> list[str]:
    lines = ["", "签订记录", "协议文本 SHA-256：", f"  {agreement.sha256}"]
    for s in signed:
        if s.signed_at is None:
            lines += ["", f"{s.side}：尚未签订"]
            continue
        when = s.signed_at.astimezone(CITY_ZONE).strftime("%Y-%m-%d %H:%M:%S")
        lines += [
            "",
            f"{s.side}：{s.signer}",
            f"  签订时间：{when}（北京时间）",
            "  所签文本 SHA-256：",
            f"  {s.sha256}",
        ]
    return lines


def render(agreement: Agreement, signed: list[Signature], title: str) -> bytes:
    """The PDF: the agreement text exactly as stored, then the signature record."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    canvas.setTitle(title)
    canvas.setSubject(f"SHA-256 {agreement.sha256}")
    canvas.setCreator("Kaifang")
    width, height = A4
    y, page = height - MARGIN, 1

    def footer() -> None:
        canvas.setFont(FONT, 8)
        canvas.drawCentredString(width / 2, MARGIN / 2, f"{title}　第 {page} 页")

    for raw in [*agreement.text.split("\n"), *_signature_lines(agreement, signed)]:
        for part in _wrap(raw, width - 2 * MARGIN):
            if y < MARGIN:
                footer()
                canvas.showPage()
                y, page = height - MARGIN, page + 1
            canvas.setFont(FONT, SIZE)
            canvas.drawString(MARGIN, y, part)
            y -= LEADING
    footer()
    canvas.save()
    return buffer.getvalue()
