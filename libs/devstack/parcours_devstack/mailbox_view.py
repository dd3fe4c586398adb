"""The SMTP sink's HTTP view: its mailbox as JSON and as readable, escaped HTML pages."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

if TYPE_CHECKING:
    from parcours_devstack.mail_store import StoredMessage
    from parcours_devstack.smtp_sink import SmtpSink


def _not_found(msg_id: int) -> JSONResponse:
    return JSONResponse(
        {
            "type": "urn:parcours:smtp-sink:message-not-found",
            "title": "No such message",
            "status": 404,
            "detail": f"the sink holds no message {msg_id}",
        },
        status_code=404,
        media_type="application/problem+json",
    )


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body{{font-family:system-ui,sans-serif;margin:1.5rem}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}}
iframe{{width:100%;height:70vh;border:1px solid #ccc}} pre{{white-space:pre-wrap}}
</style></head><body>{body}</body></html>"""


def _render_index(messages: list[StoredMessage]) -> str:
    rows = "".join(
        f'<tr><td><a href="/messages/{m.id}/view">{m.id}</a></td><td>{escape(m.received_at)}</td>'
        f"<td>{escape(m.headers['from'] or m.mail_from)}</td><td>{escape(', '.join(m.rcpt_tos))}</td>"
        f'<td><a href="/messages/{m.id}/view">{escape(m.headers["subject"] or "(no subject)")}</a></td>'
        f"<td>{len(m.raw)}</td></tr>"
        for m in reversed(messages)
    )
    body = (
        f"<h1>Parcours SMTP sink</h1><p>{len(messages)} message(s). "
        '<a href="/messages">JSON</a></p><table><tr><th>#</th><th>Received</th><th>From</th>'
        f"<th>Envelope to</th><th>Subject</th><th>Bytes</th></tr>{rows}</table>"
    )
    return _PAGE.format(title="Parcours SMTP sink", body=body)


def _render_message(detail: dict[str, Any]) -> str:
    fields = [
        ("From", detail["from"]),
        ("To", detail["to"]),
        ("Subject", detail["subject"]),
        ("Date", detail["date"]),
        ("Message-ID", detail["message_id"]),
        ("Envelope from", detail["mail_from"]),
        ("Envelope to", ", ".join(detail["rcpt_tos"])),
        ("Received", detail["received_at"]),
    ]
    headers = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value or '')}</td></tr>" for name, value in fields)
    attachments = "".join(
        f"<li>{escape(a['filename'] or '(unnamed)')} ({escape(a['content_type'])}, {a['size']} bytes)</li>"
        for a in detail["attachments"]
    )
    if detail["html"] is not None:
        content = f'<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{escape(detail["html"])}"></iframe>'
    else:
        content = f"<pre>{escape(detail['text'] or '')}</pre>"
    body = (
        f'<p><a href="/">&larr; all messages</a> · <a href="/messages/{detail["id"]}">JSON</a> · '
        f'<a href="/messages/{detail["id"]}/raw">raw</a></p><table>{headers}</table>'
        f"{'<h2>Attachments</h2><ul>' + attachments + '</ul>' if attachments else ''}<h2>Body</h2>{content}"
    )
    return _PAGE.format(title=escape(detail["subject"] or "(no subject)"), body=body)


def create_app(sink: SmtpSink) -> FastAPI:
    app = FastAPI(title="Parcours SMTP sink", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/messages")
    async def list_messages(rcpt: str | None = None, subject_contains: str | None = None) -> list[dict[str, Any]]:
        return [m.summary() for m in sink.select(rcpt=rcpt, subject_contains=subject_contains)]

    @app.delete("/messages", status_code=204)
    async def clear_messages() -> Response:
        sink.clear()
        return Response(status_code=204)

    @app.get("/messages/{msg_id}")
    async def get_message(msg_id: int) -> Any:
        stored = sink.get(msg_id)
        return stored.detail() if stored is not None else _not_found(msg_id)

    @app.get("/messages/{msg_id}/raw")
    async def get_raw(msg_id: int) -> Response:
        stored = sink.get(msg_id)
        if stored is None:
            return _not_found(msg_id)
        disposition = f'attachment; filename="{msg_id}.eml"'
        return Response(stored.raw, media_type="message/rfc822", headers={"Content-Disposition": disposition})

    @app.get("/messages/{msg_id}/view", response_class=HTMLResponse)
    async def view_message(msg_id: int) -> Response:
        stored = sink.get(msg_id)
        return HTMLResponse(_render_message(stored.detail())) if stored is not None else _not_found(msg_id)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(_render_index(sink.select()))

    return app
