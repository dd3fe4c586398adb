"""Batch PDF split: pages per second of ingest's split (`split_pdf`: one PDF per invoice, with the
text of each part's first page extracted to find its number) against `qpdf --split-pages` on the
same generated file, in the same run (goal ≥ 50 %). Without qpdf on the PATH (Debian: `apt-get
install qpdf`), the baseline is a bare pypdf split (one writer per page, no text extraction).
Rates are pages per CPU second (this process's, qpdf's as a child): the wall clock of a shared box
moves with the other jobs; `*_wall_pages_per_s` give the wall-clock rates too.

    python -m bench.ingest_split                  # 2000 pages, one invoice per page
    python -m bench.ingest_split --pages 500 --pages-per-invoice 2"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # `python bench/ingest_split.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pypdf import PdfReader, PdfWriter  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

from parcours_ingest.domain.documents.pdf import PdfLimits  # noqa: E402
from parcours_ingest.domain.pdf_split import SplitRule, split_pdf  # noqa: E402

GOAL = 0.5


def batch_pdf(pages: int, pages_per_invoice: int) -> bytes:
    """A PDF of invoices: each one's first page says "Facture n° B-<n>", then a few lines of text."""
    out = io.BytesIO()
    document = canvas.Canvas(out)
    for page in range(pages):
        number, position = divmod(page, pages_per_invoice)
        if position == 0:
            document.drawString(72, 760, f"Facture n° B-{number:06d}")
        for line in range(12):
            document.drawString(72, 720 - 18 * line, f"Ligne {line + 1} : prestation de conseil, 2 × 500,00 € HT")
        document.showPage()
    document.save()
    return out.getvalue()


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (qpdf)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _best_of(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    """The best CPU seconds and the best wall seconds of `runs` runs."""
    best_cpu = best_wall = float("inf")
    for _ in range(runs):
        cpu, started = _cpu_seconds(), time.perf_counter()
        action()
        best_wall = min(best_wall, time.perf_counter() - started)
        best_cpu = min(best_cpu, _cpu_seconds() - cpu)
    return best_cpu, best_wall


def _qpdf_split(pdf: Path) -> None:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(["qpdf", "--split-pages", str(pdf), str(Path(out) / "page-%d.pdf")], check=True)


def _pypdf_split(content: bytes) -> None:
    reader = PdfReader(io.BytesIO(content))
    for page in reader.pages:
        writer = PdfWriter()
        writer.add_page(page)
        writer.write(io.BytesIO())


def measure(*, pages: int = 2000, pages_per_invoice: int = 1, runs: int = 3, say=print) -> dict:
    content = batch_pdf(pages, pages_per_invoice)
    limits = PdfLimits(max_pages=pages)
    rules = {"pages": SplitRule(mode="pages", pages=pages_per_invoice),
             "anchor": SplitRule(mode="anchor", anchor=r"Facture n° (?P<number>B-\d+)")}
    result: dict = {"pages": pages, "pages_per_invoice": pages_per_invoice, "bytes": len(content)}
    for name, rule in rules.items():
        parts = split_pdf(content, rule, limits=limits)
        assert len(parts) == pages // pages_per_invoice, "the split found the wrong number of invoices"
        cpu, wall = _best_of(runs, lambda rule=rule: split_pdf(content, rule, limits=limits))
        result[f"parcours_{name}_pages_per_s"] = round(pages / cpu, 1)
        result[f"parcours_{name}_wall_pages_per_s"] = round(pages / wall, 1)
    # the cut alone, without the text extraction that matching parts to their data needs
    cpu, _ = _best_of(runs, lambda: split_pdf(content, rules["pages"], limits=limits, read_text=False))
    result["parcours_cut_only_pages_per_s"] = round(pages / cpu, 1)
    if shutil.which("qpdf"):
        with tempfile.TemporaryDirectory() as folder:
            pdf = Path(folder) / "batch.pdf"
            pdf.write_bytes(content)
            cpu, wall = _best_of(runs, lambda: _qpdf_split(pdf))
        result["baseline"] = "qpdf --split-pages"
    else:
        cpu, wall = _best_of(runs, lambda: _pypdf_split(content))
        result["baseline"] = "pypdf bare split (qpdf not installed)"
    result["baseline_pages_per_s"] = round(pages / cpu, 1)
    result["baseline_wall_pages_per_s"] = round(pages / wall, 1)
    result["ratio"] = round(result["parcours_pages_pages_per_s"] / result["baseline_pages_per_s"], 3)
    result["goal"] = GOAL
    result["cut_only_ratio"] = round(result["parcours_cut_only_pages_per_s"] / result["baseline_pages_per_s"], 3)
    say(f"  split (pages per CPU second): {result['parcours_pages_pages_per_s']:.0f} pages/s by page count, "
        f"{result['parcours_anchor_pages_per_s']:.0f} by anchor, {result['parcours_cut_only_pages_per_s']:.0f} cut "
        f"only (no text); {result['baseline']} {result['baseline_pages_per_s']:.0f} pages/s → {result['ratio']:.0%} "
        f"(cut only {result['cut_only_ratio']:.0%}; goal ≥ {GOAL:.0%})")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_split", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--pages-per-invoice", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs (default 3)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(pages=args.pages, pages_per_invoice=args.pages_per_invoice, runs=args.runs), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
