"""`parcours import FILE|FOLDER`: send invoice files to ingest's API and print what became of each
invoice. JSON, UBL/CII XML and Factur-X PDF files go to `POST /v1/invoices`; JSON arrays, CSV and
XLSX exports, and a PDF of many invoices with its data (`--split-rule`, `--data`) go to
`POST /v1/batches`, followed until done. Exit status 0 when every invoice was accepted, 1 otherwise."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MEDIA_TYPES = {".json": "application/json", ".xml": "application/xml", ".pdf": "application/pdf", ".csv": "text/csv",
               ".xlsx": XLSX, ".xlsm": "application/vnd.ms-excel.sheet.macroEnabled.12"}
TABLE_FORMATS = (".csv", ".xlsx", ".xlsm")
OK = {"accepted"}

app = typer.Typer(help="Parcours from the command line.", no_args_is_help=True, add_completion=False)


@dataclass
class Outcome:
    file: str
    item: str
    status: str
    detail: str


@dataclass
class Upload:
    """One request: to `/v1/invoices` or `/v1/batches`."""

    path: Path
    endpoint: str
    content: bytes | None = None
    media_type: str | None = None
    files: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """The same file(s) with the same options: a rerun replays the first answer instead of sending again."""
        digest = hashlib.sha256(repr(sorted(self.params.items())).encode())
        for content in [self.content] + [part[1] for part in (self.files or {}).values()]:
            digest.update(hashlib.sha256(content if isinstance(content, bytes) else b"").digest())
        return "parcours-import-" + digest.hexdigest()[:48]


@app.callback()
def main_callback() -> None:
    """Parcours from the command line."""


@app.command("import")
def import_files(
        path: Annotated[Path, typer.Argument(exists=True, readable=True, help="A file, or a folder of files.")],
        url: Annotated[str, typer.Option(envvar="PARCOURS_URL", help="Base URL of ingest.")] = "http://127.0.0.1:8101",
        api_key: Annotated[str, typer.Option(envvar="PARCOURS_API_KEY", help="The tenant's API key.")] = "",
        profile: Annotated[str | None, typer.Option(help="Mapping profile of CSV/XLSX files.")] = None,
        split_rule: Annotated[str | None, typer.Option(help="Split rule: PDFs are batches of many invoices.")] = None,
        data: Annotated[Path | None, typer.Option(exists=True, help="The invoice data of a PDF to split.")] = None,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for each batch.")] = 600.0,
        concurrency: Annotated[int, typer.Option(min=1, max=64, help="Files sent at once.")] = 4,
) -> None:
    """Send invoice files (JSON, XML, Factur-X PDF, JSON arrays, CSV, XLSX, or a PDF to split) to ingest."""
    console = Console()
    if not api_key:
        raise typer.BadParameter("give --api-key or set PARCOURS_API_KEY", param_hint="--api-key")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_TYPES) \
        if path.is_dir() else [path]
    if data is not None:
        files = [f for f in files if f.resolve() != data.resolve()]
    if split_rule is not None and data is None:
        raise typer.BadParameter("a PDF to split needs its invoice data", param_hint="--data")
    uploads = [_upload(f, profile=profile, split_rule=split_rule, data=data) for f in files]
    outcomes: list[Outcome] = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=120) as client, \
            Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     console=console) as progress:
        overall = progress.add_task("files", total=len(uploads))

        def send(upload: Upload) -> list[Outcome]:
            try:
                return _send(client, upload, progress, timeout=timeout)
            finally:
                progress.advance(overall)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:  # results in the files' order
            for sent in pool.map(send, uploads):
                outcomes += sent
    _print(console, outcomes)
    raise typer.Exit(0 if outcomes and all(o.status in OK for o in outcomes) else 1)


def _upload(path: Path, *, profile: str | None, split_rule: str | None, data: Path | None) -> Upload:
    suffix = path.suffix.lower()
    media_type = MEDIA_TYPES.get(suffix, "application/octet-stream")
    content = path.read_bytes()
    if suffix == ".pdf" and split_rule is not None and data is not None:
        data_type = MEDIA_TYPES.get(data.suffix.lower(), "application/octet-stream")
        params = {"split_rule": split_rule, **({"profile": profile} if profile else {})}
        return Upload(path, "/v1/batches", params=params, files={
            "pdf": (path.name, content, "application/pdf"), "data": (data.name, data.read_bytes(), data_type)})
    if suffix in TABLE_FORMATS:
        if profile is None:
            raise typer.BadParameter(f"{path.name}: CSV and XLSX files need a mapping profile", param_hint="--profile")
        return Upload(path, "/v1/batches", content, media_type, params={"profile": profile, "filename": path.name})
    if suffix == ".json" and content.lstrip()[:1] == b"[":
        return Upload(path, "/v1/batches", content, media_type, params={"filename": path.name})
    return Upload(path, "/v1/invoices", content, media_type)


def _send(client: httpx.Client, upload: Upload, progress: Progress, *, timeout: float) -> list[Outcome]:
    name = upload.path.name
    headers = {"Idempotency-Key": upload.idempotency_key}
    try:
        if upload.files is not None:
            response = client.post(upload.endpoint, params=upload.params, files=upload.files, headers=headers)
        else:
            headers["Content-Type"] = upload.media_type or "application/octet-stream"
            response = client.post(upload.endpoint, params=upload.params, content=upload.content, headers=headers)
    except httpx.HTTPError as exc:
        return [Outcome(name, "", "error", f"{type(exc).__name__}: {exc}")]
    body = _json(response)
    if upload.endpoint == "/v1/invoices":
        if response.status_code == 202:
            return [Outcome(name, body.get("number", ""), "accepted", body.get("invoice_id", ""))]
        status = "duplicate" if response.status_code == 409 else "rejected"
        return [Outcome(name, "", status, _problem_text(response.status_code, body))]
    if response.status_code != 202:
        return [Outcome(name, "", "rejected", _problem_text(response.status_code, body))]
    return _follow(client, name, body["batch_id"], progress, timeout=timeout)


def _follow(client: httpx.Client, name: str, batch_id: str, progress: Progress, *, timeout: float) -> list[Outcome]:
    """Poll the batch until it is done, with a progress bar of its items; then every item's outcome."""
    task = progress.add_task(f"  batch {batch_id[:8]}", total=None)
    deadline = time.monotonic() + timeout
    try:
        while True:
            batch = _json(client.get(f"/v1/batches/{batch_id}", params={"limit": 0}))
            progress.update(task, total=batch.get("total_items"), completed=batch.get("processed_items", 0))
            if batch.get("status") in ("done", "failed"):
                break
            if time.monotonic() > deadline:
                return [Outcome(name, "", "error", f"batch {batch_id} still {batch.get('status')} after {timeout:.0f} s")]
            time.sleep(0.3)
    finally:
        progress.remove_task(task)
    if batch["status"] == "failed":
        error = batch.get("error") or {}
        return [Outcome(name, "", "rejected", f"{error.get('type', 'failed')}: {error.get('detail', '')}")]
    items = _json(client.get(f"/v1/batches/{batch_id}", params={"limit": 10_000})).get("items", [])
    return [Outcome(name, _where(item), item["status"],
                    item.get("invoice_id") or _problem_text(None, item)) for item in items]


def _where(item: dict) -> str:
    location = item.get("location") or {}
    place = (f"rows {','.join(map(str, location['rows']))}" if "rows" in location else
             f"#{location['index']}" if "index" in location else "")
    if "pages" in location:
        place = f"{place} pages {location['pages'][0]}-{location['pages'][1]}".strip()
    return f"{item.get('number') or ''} {place}".strip()


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:200]}
    return body if isinstance(body, dict) else {}


def _problem_text(status: int | None, body: dict) -> str:
    errors = body.get("errors") or []
    spots = []
    for error in errors[:3]:
        spot = error.get("pointer") or error.get("cell") or ""
        if error.get("row") is not None:
            spot = f"row {error['row']}" + (f" {error['column']}" if error.get("column") else "")
        spots.append(f"{spot}: {error.get('detail', '')}".strip(": "))
    code = body.get("type", "").rsplit("/", 1)[-1] or body.get("code") or ""
    head = " ".join(str(part) for part in (status, code) if part)
    return "; ".join([f"{head} {body.get('detail', '')}".strip()] + spots)


def _print(console: Console, outcomes: list[Outcome]) -> None:
    table = Table(title="Import")
    for column in ("file", "invoice", "status", "invoice id / problem"):
        table.add_column(column, overflow="fold")
    styles = {"accepted": "green", "duplicate": "yellow"}
    for outcome in outcomes:
        style = styles.get(outcome.status, "red")
        table.add_row(outcome.file, outcome.item, f"[{style}]{outcome.status}[/{style}]", outcome.detail)
    console.print(table)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    console.print(", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "nothing sent")


def main() -> None:
    app()
