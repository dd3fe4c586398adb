"""Reading a batch's items from its stored files, and checking each one exactly as
`POST /v1/invoices` checks a JSON invoice (and its PDF). CPU-bound: the worker and the batch
route call these in a thread."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi.exceptions import RequestValidationError

from parcours_runtime.problems import Problem, validation_problem
from parcours_ingest.api.body import parse_json
from parcours_ingest.api.formats import Submission, document_problem, json_submission, pdf_limits
from parcours_ingest.config import Settings
from parcours_ingest.domain.batch_items import Item, json_items, located, split_items, table_items
from parcours_ingest.domain.csv_mapping import MappingProfile, group_rows
from parcours_ingest.domain.documents import DocumentError
from parcours_ingest.domain.documents.pdf import PdfLimits
from parcours_ingest.domain.pdf_split import SplitRule, split_pdf
from parcours_ingest.domain.spreadsheets import XLSX_MEDIA_TYPE, read_csv, read_xlsx
from parcours_ingest.store.batch_models import BatchFileRow, BatchRow


@dataclass
class Outcome:
    """An item checked: its submission (ready to store) or the problem refusing it."""

    item: Item
    submission: Submission | None = None
    problem: Problem | None = None


def read_items(batch: BatchRow, files: list[BatchFileRow],
               settings: Settings) -> tuple[list[Item], MappingProfile | None]:
    """The batch's items, from its stored files and the options it was received with."""
    profile = MappingProfile.model_validate(batch.options["profile"]) if "profile" in batch.options else None
    by_name = {file.name: file for file in files}
    data = data_items(by_name["data"].media_type, by_name["data"].content, profile, settings)
    if batch.kind != "pdf-split":
        return data, profile
    rule = SplitRule.model_validate(batch.options["split_rule"])
    limits = batch_pdf_limits(settings)
    pdfs = sorted((name for name in by_name if name.startswith("pdf-")), key=lambda name: int(name.split("-")[1]))
    parts = [part for position, name in enumerate(pdfs)
             for part in split_pdf(by_name[name].content, rule, limits=limits, file=position)]
    return split_items(data, parts), profile


def batch_pdf_limits(settings: Settings) -> PdfLimits:
    """The limits of a single invoice's PDF, except for its page count."""
    return replace(pdf_limits(settings), max_pages=settings.max_batch_pdf_pages)


def data_items(media_type: str, content: bytes, profile: MappingProfile | None, settings: Settings) -> list[Item]:
    """The items of a JSON array, CSV or XLSX file; Problem or TableError if the file cannot be read."""
    if media_type == "application/json":
        payloads = parse_json(content)
        if not isinstance(payloads, list):
            raise Problem(422, "A JSON batch is an array of invoices.", slug="not-an-array")
        return json_items(payloads)
    if profile is None:
        raise Problem(422, "A CSV or XLSX batch needs a mapping profile.", slug="missing-profile")
    if media_type == XLSX_MEDIA_TYPE:
        table = read_xlsx(content, profile, max_rows=settings.max_batch_items,
                          max_inflated_bytes=settings.max_batch_bytes)
    else:
        table = read_csv(content, profile, max_rows=settings.max_batch_items)
    return table_items(group_rows(table, profile))


def check_items(items: list[Item], settings: Settings, profile: MappingProfile | None) -> list[Outcome]:
    return [check_item(item, settings, profile) for item in items]


def check_item(item: Item, settings: Settings, profile: MappingProfile | None) -> Outcome:
    """The item checked as POST /v1/invoices checks a JSON invoice (and its PDF)."""
    if item.code is not None:
        return Outcome(item, problem=Problem(422, item.detail or item.code, slug=item.code, errors=item.errors))
    try:
        return Outcome(item, submission=json_submission(item.payload, settings=settings, pdf=item.pdf))
    except RequestValidationError as exc:
        problem = validation_problem(exc)
    except Problem as exc:
        problem = exc
    except DocumentError as exc:
        problem = document_problem(exc)
    problem.errors = located(problem.errors or [], item, profile)
    return Outcome(item, problem=problem)
