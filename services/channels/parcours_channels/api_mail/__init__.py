"""Tenant-authenticated routes about a tenant's mail: its sender domain (DKIM key, DNS records,
setup check), its branding and its template overrides."""

from fastapi import APIRouter

from parcours_channels.api_mail import branding, sender_domain, templates

router = APIRouter()
router.include_router(sender_domain.router)
router.include_router(branding.router)
router.include_router(templates.router)
