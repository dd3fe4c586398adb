"""The Factur-X benchmark (bench/ingest_facturx.py, run by `make bench`) on a few builds: what it builds
is a Factur-X the library reads back, and the baseline is measured in the same run (no timing asserted)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import facturx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import ingest_facturx  # noqa: E402
from parcours_ingest.domain.outgoing import build_facturx  # noqa: E402


def test_the_facturx_benchmark_measures_both_sides():
    lines: list[str] = []
    result = ingest_facturx.measure(builds=3, say=lines.append)
    assert result["facturx_per_core_s"] > 0 and result["baseline_per_core_s"] > 0 and result["ratio"] > 0
    assert "goal ≥ 200/s per core" in lines[-1]
    cgv, annex = ingest_facturx.text_pdf("CGV"), ingest_facturx.text_pdf("Annexe")
    built = build_facturx(ingest_facturx.inputs(7, cgv=cgv, annex=annex))
    filename, xml = facturx.get_xml_from_pdf(io.BytesIO(built), check_xsd=True)
    assert filename == "factur-x.xml" and b"F-2026-000007" in xml
