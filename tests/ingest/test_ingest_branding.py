"""The PDF ingest renders for an invoice sent as data wears its tenant's branding, set in channels
(`PUT /v1/branding`) and announced to ingest on the broker: display name, logo, accent colour, legal
footer. A change re-renders; a tenant without branding keeps the default look; no tenant gets another's."""

from __future__ import annotations

import base64
import io
import json
from decimal import Decimal

import httpx
import pytest
from facturx import get_xml_from_pdf
from PIL import Image
from pypdf import PdfReader

from parcours_ingest.domain.invoice import Invoice
from parcours_ingest.domain.render_pdf import Branding, render_invoice

FOOTER = "ACME SAS au capital de 10 000 € — RCS Paris 732 829 320"
PDF_A_COLOUR = ".043137 .447059 .521569 rg"  # #0b7285 as the page's fill colour


def png(size=(60, 24), mode="RGBA", colour=(200, 30, 30, 255)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


def page_one(pdf: bytes) -> tuple[str, list[tuple[int, int]], bytes]:
    """Text, image sizes and content stream of the first page of the invoice."""
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    xobjects = page["/Resources"].get("/XObject", {})
    images = [(int(x["/Width"]), int(x["/Height"])) for x in (o.get_object() for o in xobjects.values())
              if x["/Subtype"] == "/Image"]
    return page.extract_text(), images, page.get_contents().get_data()


@pytest.fixture
async def channels_api(run_service, tenant_key):
    channels = await run_service("channels", bounce_smtp_port=0)
    clients = {}
    for tenant in ("acme", "globex"):
        key = await tenant_key(channels, tenant, tenant.upper())
        clients[tenant] = httpx.AsyncClient(base_url=channels.url, headers={"Authorization": f"Bearer {key}"})
    yield clients
    for client in clients.values():
        await client.aclose()


async def test_branding_set_in_channels_shapes_the_rendered_pdf(ingest, client, acme, tenant_key, channels_api,
                                                               make_invoice, eventually):
    globex = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='globex', tenant_name='GLOBEX')}"}
    ids = {}
    for tenant, headers in (("acme", acme), ("globex", globex)):
        response = await client.post("/v1/invoices", json=make_invoice("F-2026-0300"), headers=headers)
        assert response.status_code == 202, response.text
        ids[tenant] = response.json()["invoice_id"]

    async def facturx(tenant: str, headers: dict) -> bytes:
        response = await client.get(f"/v1/invoices/{ids[tenant]}/facturx", headers=headers)
        assert response.status_code == 200, response.text
        return response.content

    default_text, default_images, _ = page_one(await facturx("acme", acme))  # built and cached before any branding
    assert default_images == [] and "FACTURE N° F-2026-0300" in default_text

    put = await channels_api["acme"].put("/v1/branding", json={
        "name": "ACME Services", "primary_color": "#0b7285", "legal_footer": FOOTER,
        "logo": {"media_type": "image/png", "data": base64.b64encode(png()).decode()}})
    assert put.status_code == 200, put.text
    assert put.json()["legal_footer"] == FOOTER

    async def branded():
        pdf = await facturx("acme", acme)
        return pdf if "ACME Services" in page_one(pdf)[0] else None

    pdf = await eventually(branded, what="acme's branding on its rendered PDF")
    text, images, content = page_one(pdf)
    assert FOOTER in text and "FACTURE N° F-2026-0300" in text
    assert images == [(60, 24)]  # the logo, as sent
    assert PDF_A_COLOUR.encode() in content  # the accent colour
    xml_name, xml = get_xml_from_pdf(pdf, check_xsd=True)
    assert xml_name == "factur-x.xml" and b"F-2026-0300" in xml  # still a Factur-X
    assert b"<pdfaid:part>3</pdfaid:part>" in PdfReader(io.BytesIO(pdf)).xmp_metadata.stream.get_data()
    initech = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='initech', tenant_name='INITECH')}"}
    again = await client.post("/v1/invoices", content=pdf, headers={**initech, "Content-Type": "application/pdf"})
    assert again.status_code == 202, again.text  # our own POST takes it back

    # globex has no branding: the default look, nothing of acme's
    text, images, content = page_one(await facturx("globex", globex))
    assert "ACME Services" not in text and FOOTER not in text and images == []
    assert PDF_A_COLOUR.encode() not in content

    # a change re-renders the same invoice (the cache key holds the branding)
    await channels_api["acme"].put("/v1/branding", json={"name": "ACME Group", "primary_color": "#0b7285"})
    pdf = await eventually(lambda: _with(facturx("acme", acme), "ACME Group"), what="the new name")
    text, images, _ = page_one(pdf)
    assert "ACME Services" not in text and FOOTER not in text and images == []

    assert (await channels_api["acme"].delete("/v1/branding")).status_code == 204
    pdf = await eventually(lambda: _without(facturx("acme", acme), "ACME Group"), what="the default look again")
    assert page_one(pdf)[1] == []


async def _with(pdf_coroutine, text: str) -> bytes | None:
    pdf = await pdf_coroutine
    return pdf if text in page_one(pdf)[0] else None


async def _without(pdf_coroutine, text: str) -> bytes | None:
    pdf = await pdf_coroutine
    return pdf if text not in page_one(pdf)[0] else None


def test_a_logo_that_cannot_be_read_is_left_out(make_invoice):
    invoice = Invoice.model_validate(json.loads(json.dumps(make_invoice("F-2026-0301")), parse_float=Decimal))
    for logo in (b"\x89PNG\r\n\x1a\n not an image", png(size=(5000, 5000), mode="1", colour=0)):  # 25 Mpx
        text, images, _ = page_one(render_invoice(invoice, branding=Branding(name="ACME Services", logo=logo)))
        assert "ACME Services" in text and images == []
