"""Magic sign-in links for recipients: random tokens (only their hash is stored) and the mail
that carries them. No IO."""

from __future__ import annotations

import hashlib
import secrets
from email.message import EmailMessage
from email.utils import make_msgid

from parcours_portal.domain.i18n import translator


def new_token() -> tuple[str, str]:
    """(token for the link, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in_mail(*, sender: str, to: str, links: list[tuple[str, str]], minutes: int, language: str) -> EmailMessage:
    """The mail with one sign-in link per customer the address receives invoices for: links are (label, url)."""
    t = translator(language)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, t("signin.subject")
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1].strip(">") or "parcours.localhost")
    lines = [t("signin.body", minutes=minutes), ""] + [f"{label}: {url}" for label, url in links]
    message.set_content("\n".join(lines) + "\n\n" + t("signin.ignore") + "\n")
    return message
