"""The SMTP sink, driven over real SMTP (aiosmtplib) and real HTTP (httpx)."""

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest
import pytest_asyncio

from parcours_devstack.smtp_sink import SmtpSink

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def invoice_mail(to: str = "billing@buyer.example", subject: str = "Invoice INV-2024-0042") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Parcours <noreply@parcours.example>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<inv-2024-0042.1@parcours.example>"
    message["Date"] = "Tue, 02 Jan 2024 10:00:00 +0000"
    message.set_content("Bonjour,\nveuillez trouver la facture ci-jointe — 120,00 €.\n")
    message.add_alternative("<p>Bonjour,</p><p>Facture <b>INV-2024-0042</b> — 120,00 €</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="INV-2024-0042.pdf")
    return message


def host_port(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


async def send(sink_address: str, message: EmailMessage | bytes, **kwargs: object) -> None:
    host, port = host_port(sink_address)
    await aiosmtplib.send(message, hostname=host, port=port, timeout=10, **kwargs)


@pytest_asyncio.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as running:
        yield running


@pytest_asyncio.fixture
async def http(sink: SmtpSink) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sink.http_url, trust_env=False, timeout=10) as client:
        yield client


@pytest.mark.asyncio
async def test_a_multipart_invoice_mail_shows_in_the_http_view(sink: SmtpSink, http: httpx.AsyncClient) -> None:
    await send(sink.smtp_address, invoice_mail())

    listed = (await http.get("/messages")).json()
    assert len(listed) == 1
    summary = listed[0]
    assert summary["id"] == 1
    assert summary["mail_from"] == "noreply@parcours.example"
    assert summary["rcpt_tos"] == ["billing@buyer.example"]
    assert summary["subject"] == "Invoice INV-2024-0042"
    assert summary["from"] == "Parcours <noreply@parcours.example>"
    assert summary["to"] == "billing@buyer.example"
    assert summary["message_id"] == "<inv-2024-0042.1@parcours.example>"
    assert summary["date"] == "Tue, 02 Jan 2024 10:00:00 +0000"
    assert summary["received_at"].endswith("+00:00")
    assert summary["size"] == len(sink.messages()[0]["raw"])
    assert "raw" not in summary

    detail = (await http.get("/messages/1")).json()
    assert detail["text"] == "Bonjour,\nveuillez trouver la facture ci-jointe — 120,00 €.\n"
    assert "<b>INV-2024-0042</b> — 120,00 €" in detail["html"]
    assert detail["attachments"] == [
        {"filename": "INV-2024-0042.pdf", "content_type": "application/pdf", "size": len(PDF)}
    ]
    assert (await http.get("/messages/2")).status_code == 404


@pytest.mark.asyncio
async def test_the_raw_endpoint_returns_the_exact_bytes_received(sink: SmtpSink, http: httpx.AsyncClient) -> None:
    raw = (
        "From: a@parcours.example\r\nTo: b@buyer.example\r\nSubject: raw\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "ligne 1 — 8 bits\r\n.a line that starts with a dot\r\n..and two\r\n\r\nend\r\n"
    ).encode()
    await send(sink.smtp_address, raw, sender="a@parcours.example", recipients=["b@buyer.example"])

    response = await http.get("/messages/1/raw")
    assert response.status_code == 200
    assert response.headers["content-type"] == "message/rfc822"
    assert response.content == raw
    assert sink.messages()[0]["raw"] == raw


@pytest.mark.asyncio
async def test_filters_by_recipient_and_subject(sink: SmtpSink, http: httpx.AsyncClient) -> None:
    await send(sink.smtp_address, invoice_mail("alice@buyer.example", "Invoice A-1"))
    await send(sink.smtp_address, invoice_mail("bob@buyer.example", "Invoice B-1"))
    await send(sink.smtp_address, invoice_mail("alice@buyer.example", "Reminder A-1"))

    assert [m["subject"] for m in sink.messages(rcpt="alice@buyer.example")] == ["Invoice A-1", "Reminder A-1"]
    assert [m["id"] for m in (await http.get("/messages", params={"rcpt": "BOB@buyer.example"})).json()] == [2]
    by_subject = (await http.get("/messages", params={"subject_contains": "invoice"})).json()
    assert [m["subject"] for m in by_subject] == ["Invoice A-1", "Invoice B-1"]
    both = {"rcpt": "alice@buyer.example", "subject_contains": "reminder"}
    assert [m["id"] for m in (await http.get("/messages", params=both)).json()] == [3]

    assert (await http.delete("/messages")).status_code == 204
    assert (await http.get("/messages")).json() == []
    assert sink.messages() == []


@pytest.mark.asyncio
async def test_a_rejected_recipient_is_a_real_550_and_nothing_is_stored(sink: SmtpSink) -> None:
    sink.reject_next(1, code=550, message="5.1.1 No such mailbox")

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(sink.smtp_address, invoice_mail())

    [recipient] = refused.value.recipients
    assert recipient.code == 550
    assert "No such mailbox" in recipient.message
    assert sink.messages() == []

    await send(sink.smtp_address, invoice_mail())
    assert len(sink.messages()) == 1


@pytest.mark.asyncio
async def test_a_451_then_a_retry_succeeds(sink: SmtpSink) -> None:
    sink.reject_next(1, code=451)

    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(sink.smtp_address, invoice_mail())
    assert refused.value.recipients[0].code == 451
    assert sink.messages() == []

    await send(sink.smtp_address, invoice_mail())
    [stored] = sink.messages()
    assert stored["rcpt_tos"] == ["billing@buyer.example"]


@pytest.mark.asyncio
async def test_a_rejection_at_data_time(sink: SmtpSink) -> None:
    sink.reject_next(1, code=554, message="5.6.0 Content rejected", stage="data")

    with pytest.raises(aiosmtplib.SMTPResponseException) as rejected:
        await send(sink.smtp_address, invoice_mail())
    assert rejected.value.code == 554
    assert sink.messages() == []


@pytest.mark.asyncio
async def test_wait_for_returns_once_the_mail_arrives(sink: SmtpSink) -> None:
    sending = asyncio.create_task(send(sink.smtp_address, invoice_mail("late@buyer.example")))
    [arrived] = await sink.wait_for(1, rcpt="late@buyer.example", timeout=5)
    await sending
    assert arrived["subject"] == "Invoice INV-2024-0042"
    with pytest.raises(TimeoutError):
        await sink.wait_for(1, rcpt="nobody@buyer.example", timeout=0.1)


@pytest.mark.asyncio
async def test_the_html_pages_escape_what_they_show(sink: SmtpSink, http: httpx.AsyncClient) -> None:
    await send(sink.smtp_address, invoice_mail(subject="<script>alert(1)</script> & co"))

    index = await http.get("/")
    assert index.status_code == 200
    assert "<script>" not in index.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in index.text
    assert 'href="/messages/1/view"' in index.text

    view = await http.get("/messages/1/view")
    assert view.status_code == 200
    assert "<script>" not in view.text
    assert '<iframe sandbox=""' in view.text
    assert "srcdoc=\"&lt;p&gt;Bonjour,&lt;/p&gt;" in view.text
    assert "INV-2024-0042.pdf" in view.text
    assert (await http.get("/healthz")).json() == {"status": "ok"}


@pytest.mark.asyncio
async def test_malformed_headers_are_kept_not_refused(sink: SmtpSink, http: httpx.AsyncClient) -> None:
    raw = (
        b"From: <<b>@parcours.example\r\nTo: \r\nMessage-ID: <<script>x</script>@parcours.example>\r\n"
        b"Subject: =?bogus-charset?q?caf=E9?=\r\nContent-Type: text/plain; charset=bogus-charset\r\n\r\n"
        b"caf\xe9\r\n"
    )
    await send(sink.smtp_address, raw, sender="a@parcours.example", recipients=["b@buyer.example"])

    [summary] = (await http.get("/messages")).json()
    assert summary["message_id"] == "<<script>x</script>@parcours.example>"
    assert summary["from"] == "<<b>@parcours.example"
    assert summary["subject"] == "caf\ufffd"
    detail = (await http.get("/messages/1")).json()
    assert detail["text"] == "caf\ufffd\n"
    view = await http.get("/messages/1/view")
    assert "<script>" not in view.text and "&lt;&lt;script&gt;x&lt;/script&gt;@parcours.example&gt;" in view.text


@pytest.mark.asyncio
async def test_store_dir_keeps_the_mailbox_across_restarts(tmp_path: Path) -> None:
    store = tmp_path / "mailbox"
    first = SmtpSink(store_dir=store)
    await first.start()
    await send(first.smtp_address, invoice_mail(subject="Kept"))
    raw = first.messages()[0]["raw"]
    await first.stop()
    assert (store / "1.eml").read_bytes() == raw

    second = SmtpSink(store_dir=store)
    async with second:
        [kept] = second.messages()
        assert (kept["id"], kept["subject"], kept["raw"]) == (1, "Kept", raw)
        assert kept["mail_from"] == "noreply@parcours.example"
        assert kept["rcpt_tos"] == ["billing@buyer.example"]
        await send(second.smtp_address, invoice_mail(subject="New"))
        assert [m["id"] for m in second.messages()] == [1, 2]
        address = second.smtp_address

    async with second:  # the same sink restarts on the same port with the same mailbox
        assert second.smtp_address == address
        assert [m["subject"] for m in second.messages()] == ["Kept", "New"]
        second.clear()
    assert not list(store.glob("*.eml"))


def test_the_standalone_process_serves_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "parcours_devstack.smtp_sink", "--smtp-port", "0", "--http-port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            ready = json.loads(process.stdout.readline())
            assert set(ready) == {"smtp", "http"}

            asyncio.run(send(ready["smtp"], invoice_mail(subject="From a process")))
            listed = httpx.get(f"{ready['http']}/messages", trust_env=False, timeout=10).json()
            assert [m["subject"] for m in listed] == ["From a process"]

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0, process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
