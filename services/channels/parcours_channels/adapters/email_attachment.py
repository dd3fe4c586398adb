"""`email_attachment`: the link email with the invoice PDF attached.

The PDF is read from ingest by claim check (`GET /v1/invoices/{id}/pdf` with the document-reader
token naming the tenant, as partner channels read documents). An invoice without a PDF, or
with one over `attachment_max_bytes` (stopped reading there), goes out as the link email."""

from __future__ import annotations

import logging
import re

import httpx

from parcours_channels.adapters import TransientDeliveryError
from parcours_channels.adapters.documents import DocumentSettings
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
        pdf = await _invoice_pdf(request, ctx, limit=ctx.settings.attachment_max_bytes)
        if pdf is None:
            return None
        return Attachment(filename=_safe_filename(request.invoice.number) + ".pdf", content=pdf)


def _safe_filename(number: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", number).strip("._") or "invoice"


async def _invoice_pdf(request: DispatchRequested, ctx: ServiceContext, *, limit: int) -> bytes | None:
    """The PDF ingest keeps for the invoice; None if it has none, if it is over `limit` bytes or if
    no reader token is configured. Ingest unreachable or failing: TransientDeliveryError (retried)."""
    settings = DocumentSettings()
    if settings.ingest_document_token is None:
        log.warning("dispatch %s: no ingest document-reader token, sending the link email", request.dispatch_id)
        return None
    url = f"{settings.ingest_url.rstrip('/')}/v1/invoices/{request.invoice_id}/pdf"
    headers = {"Authorization": f"Bearer {settings.ingest_document_token.get_secret_value()}",
               "X-Parcours-Tenant": request.tenant_id}
    try:
        async with ctx.http.stream("GET", url, headers=headers) as response:
            if response.status_code == 404:
                log.info("dispatch %s: ingest has no PDF for the invoice, sending the link email", request.dispatch_id)
                return None
            if response.status_code != 200:
                raise TransientDeliveryError(f"ingest answered {response.status_code} for the invoice PDF")
            pdf = bytearray()
            async for chunk in response.aiter_bytes():
                pdf += chunk
                if len(pdf) > limit:
                    log.info("dispatch %s: invoice PDF over %d bytes, sending the link email",
                             request.dispatch_id, limit)
                    return None
    except httpx.HTTPError as exc:
        raise TransientDeliveryError(f"ingest unreachable: {type(exc).__name__}") from None
    return bytes(pdf)
