"""`email_link`: one email per recipient with a tracked link to the invoice page."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from parcours_channels.adapters.mail.compose import Attachment, ComposedMessage, invoice_message
from parcours_channels.adapters.mail.profile import tenant_mail_cache
from parcours_channels.adapters.mail.smtp import SMTP_POOL
from parcours_channels.adapters.send_once import SendOne, deliver_once
from parcours_channels.domain.outcome import DeliveryResult
from parcours_channels.domain.verp import verp_address
from parcours_channels.domain.wording import message_id_for
from parcours_contracts import DispatchRequested, Recipient
from parcours_runtime.service import ServiceContext


class EmailLinkAdapter:
    name = "email_link"

    async def deliver(self, request: DispatchRequested, ctx: ServiceContext) -> DeliveryResult:
        """Email each recipient not yet sent; Message-IDs and return paths are stable per (dispatch, recipient)."""
        tenant = await tenant_mail_cache(ctx).get(request.tenant_id)
        id_domain = tenant.sender.domain if tenant.sender else ctx.settings.message_id_domain
        return await deliver_once(
            request, ctx, send_one=await self.sender(request, ctx),
            message_id_for=lambda email: message_id_for(request.dispatch_id, email, id_domain),
        )

    async def sender(self, request: DispatchRequested, ctx: ServiceContext) -> SendOne:
        """What sends one recipient of `request` its message (also the deferred retries' way in)."""
        settings = ctx.settings
        attachment = await self.attachment_for(request, ctx)
        tenant = await tenant_mail_cache(ctx).get(request.tenant_id)

        async def send_one(recipient: Recipient, message_id: str, record: Callable[[], Awaitable[None]]) -> None:
            def compose() -> ComposedMessage:  # once a session is free (see SmtpPool.send)
                return invoice_message(request, recipient, message_id=message_id, settings=settings,
                                       attachment=attachment, tenant=tenant)

            return_path = verp_address(settings.bounce_secret.get_secret_value(), domain=settings.bounce_domain,
                                       dispatch_id=request.dispatch_id, recipient=recipient.email)
            await ctx.extras[SMTP_POOL].send(compose, tenant_id=request.tenant_id, envelope_sender=return_path,
                                             recipients=[recipient.email], on_accepted=record)

        return send_one

    async def attachment_for(self, request: DispatchRequested, ctx: ServiceContext) -> Attachment | None:
        """The file to attach, if any: none for a link email."""
        return None
