"""Outgoing mail behind one interface: a file outbox for the embedded default, SMTP in production."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from kaifang.db import utcnow
from kaifang.settings import Settings


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


def _message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


class FileMailer:
    """Writes each message as an .eml file under HOME/outbox (dev, demo and tests)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir: Path = settings.outbox_dir

    def send(self, to: str, subject: str, body: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        path = self.dir / f"{stamp}-{to.replace('@', '_at_')}.eml"
        path.write_bytes(bytes(_message(self.settings, to, subject, body)))

    def messages(self) -> list[EmailMessage]:
        """Every message in the outbox, oldest first (for the demo outbox page and tests)."""
        from email import policy
        from email.parser import BytesParser

        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(p.read_bytes()) for p in sorted(self.dir.glob("*.eml"))]


class SMTPMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password)
            smtp.send_message(_message(s, to, subject, body))


def make_mailer(settings: Settings) -> Mailer:
    return SMTPMailer(settings) if settings.mail_backend == "smtp" else FileMailer(settings)
