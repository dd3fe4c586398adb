"""`email_attachment`: the link email with the invoice PDF attached.

Channels cannot read ingest's database and there is no document store yet, so the PDF is
never obtainable for now and every message goes out as the link email (same content, no
attachment). The document store of a later issue plugs into `_invoice_pdf`."""

from __future__ import annotations

import logging
import re

from parcours_channels.adapters.email_link import EmailLinkAdapter
from parcours_channels.adapters.mail.compose import Attachment
from parcours_contracts import DispatchRequested
from parcours_runtime.service import ServiceContext

log = logging.getLogger(__name__)


class EmailAttachmentAdapter(EmailLinkAdapter):
    name = "email_attachment"

    async def attachment_for(self, request: DispatchRequested, ctx: ServiceContext) -> Attachment | None:
        """The invoice PDF when there is one within the size limit; otherwise None (the link email)."""
        if not request.invoice.has_pdf:
            return None
        pdf = await _invoice_pdf(request, ctx)
        if pdf is None:
            log.info("dispatch %s: invoice PDF not obtainable, sending the link email", request.dispatch_id)
            return None
        if len(pdf) > ctx.settings.attachment_max_bytes:
            log.info("dispatch %s: invoice PDF of %d bytes over the limit, sending the link email",
                     request.dispatch_id, len(pdf))
            return None
        return Attachment(filename=_safe_filename(request.invoice.number) + ".pdf", content=pdf)


def _safe_filename(number: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", number).strip("._") or "invoice"


async def _invoice_pdf(request: DispatchRequested, ctx: ServiceContext) -> bytes | None:
    return None  # no document store yet (a later issue); ingest's database is not ours to read
