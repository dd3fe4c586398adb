"""Factur-X builds per second per core (goal ≥ 200): ingest's own path for an invoice sent as data
(render the PDF, insert two CGV pages, merge a one-page annex, embed the CII, the XMP and a
supporting file), and the same build from stored pages (an invoice sent with its PDF, or rendered
pages read back from the blob store when a new CGV or annex comes: pages this process has not seen;
the CGV and annex are the tenant's, read once), against the bare cost of pypdf merging and writing the
same pages, in the same run. "Per core": builds divided by the
CPU seconds of this process (one thread), so that other jobs on the box do not count.

    python -m bench.ingest_facturx                 # 300 builds
    python -m bench.ingest_facturx --builds 50"""

from __future__ import annotations

import argparse
import copy
import io
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # `python bench/ingest_facturx.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pypdf import PdfReader, PdfWriter  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

from parcours_ingest.domain.facturx_out import Attachment, Insert  # noqa: E402
from parcours_ingest.domain.invoice import InvoiceContent  # noqa: E402
from parcours_ingest.domain.outgoing import FacturxInputs, build_facturx, render  # noqa: E402
from parcours_ingest.domain.pdf_objects import forget  # noqa: E402

GOAL = 200.0

INVOICE = {
    "number": "F-2026-0001", "issue_date": "2026-11-02", "due_date": "2026-12-02", "currency": "EUR",
    "seller": {"name": "ACME SAS", "siren": "732829320", "siret": "73282932000074", "vat_id": "FR44732829320",
               "address": {"line1": "1 rue du Port", "postcode": "13002", "city": "Marseille"}},
    "buyer": {"customer_ref": "CUST-42", "name": "Dupont SARL", "siren": "552100554"},
    "lines": [{"description": f"Prestation {i}", "quantity": "2", "unit_price": "50.00", "vat_rate": "20",
               "line_total_excl_tax": "100.00"} for i in range(8)],
    "totals": {"total_excl_tax": "800.00", "total_tax": "160.00", "total_incl_tax": "960.00"},
}


def text_pdf(*pages: str) -> bytes:
    out = io.BytesIO()
    document = canvas.Canvas(out)
    for text in pages:
        for line in range(30):
            document.drawString(72, 760 - 20 * line, f"{text} — article {line + 1}")
        document.showPage()
    document.save()
    return out.getvalue()


def inputs(i: int, *, cgv: bytes, annex: bytes) -> FacturxInputs:
    body = copy.deepcopy(INVOICE)
    body["number"] = f"F-2026-{i:06d}"
    return FacturxInputs(InvoiceContent.model_validate(body), "fr", cgv=Insert(cgv, None), annexes=[annex],
                         attachments=[Attachment("detail.csv", b"day;hours\n1;7\n2;6\n")])


def bare_merge(invoice_pdf: bytes, cgv: bytes, annex: bytes) -> bytes:
    """pypdf alone: the same three PDFs appended into one writer and written, nothing else."""
    writer = PdfWriter()
    for part in (invoice_pdf, cgv, annex):
        writer.append(PdfReader(io.BytesIO(part)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _rate(count: int, action: Callable[[int], object]) -> tuple[float, float]:
    """(per second of wall time, per CPU second of this process) for `count` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        action(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, count / max(cpu, 1e-9)


def measure(*, builds: int = 300, say=print) -> dict:
    cgv, annex = text_pdf("CGV page 1", "CGV page 2"), text_pdf("Annexe")
    prepared = [inputs(i, cgv=cgv, annex=annex) for i in range(builds)]
    sample = build_facturx(prepared[0])  # warm: fonts registered, profile made, modules loaded
    assert b"factur-x.xml" in sample and len(PdfReader(io.BytesIO(sample)).pages) == 4
    rendered = [render(p.invoice, "fr") for p in prepared]
    from_pages = [replace(p, pdf=pages) for p, pages in zip(prepared, rendered)]
    _, per_core = _rate(builds, lambda i: build_facturx(prepared[i]))
    _, pages_per_core = _rate(builds, lambda i: (forget(rendered[i]), build_facturx(from_pages[i])))
    _, base_per_core = _rate(builds, lambda i: bare_merge(rendered[i], cgv, annex))
    _, render_per_core = _rate(min(builds, 100), lambda i: render(prepared[i].invoice, "fr"))
    result = {
        "builds": builds, "bytes": len(sample),
        "facturx_per_core_s": round(per_core, 1), "cpu_ms_per_build": round(1000 / per_core, 2),
        "render_cpu_ms": round(1000 / render_per_core, 2),
        "from_pages_per_core_s": round(pages_per_core, 1), "cpu_ms_from_pages": round(1000 / pages_per_core, 2),
        "baseline": "pypdf merge + write of the same pages", "baseline_per_core_s": round(base_per_core, 1),
        "ratio": round(pages_per_core / base_per_core, 3), "goal": GOAL,
    }
    verdict = lambda rate: "PASS" if rate >= GOAL else "MISS"  # noqa: E731
    say(f"  Factur-X per core: {per_core:.0f} builds/s rendering included ({result['cpu_ms_per_build']:.1f} CPU ms, "
        f"render {result['render_cpu_ms']:.1f}): {verdict(per_core)}; from stored pages {pages_per_core:.0f}/s "
        f"({result['cpu_ms_from_pages']:.1f} ms): {verdict(pages_per_core)}; bare pypdf merge {base_per_core:.0f}/s "
        f"→ {result['ratio']:.0%} (goal ≥ {GOAL:.0f}/s per core)")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_facturx", description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=300)
    args = parser.parse_args(argv)
    print(json.dumps(measure(builds=args.builds), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
