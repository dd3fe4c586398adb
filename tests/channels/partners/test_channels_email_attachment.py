"""email_attachment with the real PDF: read from a real ingest by claim check (document-reader
token + tenant), attached as ingest keeps it; over the size limit, the link email instead.
(Here beside the partner channels for their `ingest` fixture: the same claim check.)"""

from __future__ import annotations

import email
import email.policy

import httpx


async def ingest_pdf(ingest, invoice_id) -> bytes:
    async with httpx.AsyncClient(base_url=ingest.host.url) as client:
        response = await client.get(f"/v1/invoices/{invoice_id}/pdf", headers={"Authorization": f"Bearer {ingest.keys['acme']}"})
    assert response.status_code == 200
    return response.content


def attachments(raw: bytes) -> list[email.message.EmailMessage]:
    return list(email.message_from_bytes(raw, policy=email.policy.default).iter_attachments())


async def test_the_factur_x_pdf_is_attached_as_ingest_keeps_it(ingest, start_channels, sink, partner_dispatch):
    invoice_id, number = await ingest.post(kind="facturx", number="F-2026/0042")
    channels = await start_channels()
    await channels.publish(partner_dispatch(invoice_id, number, channel="email_attachment", has_pdf=True))
    [message] = await sink.wait_for(1)
    [pdf] = attachments(message["raw"])
    assert pdf.get_content_type() == "application/pdf" and pdf.get_filename() == "F-2026_0042.pdf"
    assert pdf.get_content() == await ingest_pdf(ingest, invoice_id)
    assert b"/l/" in message["raw"], "the tracked link is still there"


async def test_over_the_size_limit_or_without_a_pdf_the_link_email_goes(ingest, start_channels, sink,
                                                                        partner_dispatch):
    invoice_id, number = await ingest.post(kind="facturx")
    json_id, json_number = await ingest.post(kind="json")
    channels = await start_channels(attachment_max_bytes=1024)
    await channels.publish(partner_dispatch(invoice_id, number, channel="email_attachment", has_pdf=True),
                           partner_dispatch(json_id, json_number, channel="email_attachment", has_pdf=True,
                                            recipient="other@buyer.example"))
    received = await sink.wait_for(2)
    assert [attachments(m["raw"]) for m in received] == [[], []]
    await channels.settle()
    assert {type(o).__name__ for o in await channels.outcomes()} == {"InvoiceDispatched"}
