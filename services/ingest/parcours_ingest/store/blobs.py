"""Documents (PDFs, XML, CGV pages, annexes) stored content-addressed per tenant: the key of a blob is
the SHA-256 of its bytes, so storing the same document twice stores it once, and what the database
points at cannot change behind its back. One interface, `BlobStore`; the filesystem is the default,
an S3-compatible bucket the other (`blob_store_url` = s3://bucket/prefix, store/s3_blobs.py).

Blobs are written before the transaction that references them commits: a refused or rolled-back
request can leave an unreferenced blob, never a reference without its blob."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from parcours_ingest.domain.tenants import TENANT_ID_PATTERN

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TENANT = re.compile(TENANT_ID_PATTERN)


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def blob_path(tenant_id: str, digest: str) -> str:
    """`<tenant>/<sha[:2]>/<sha>`, the place of a blob in every store (ValueError for anything else)."""
    if not _TENANT.match(tenant_id):
        raise ValueError(f"not a tenant id: {tenant_id!r}")
    if not _SHA256.match(digest):
        raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
    return f"{tenant_id}/{digest[:2]}/{digest}"


class BlobStore(Protocol):
    """Where document bytes live. Keys are (tenant, sha256); a tenant never reads another's blobs."""

    async def put(self, tenant_id: str, content: bytes) -> str:
        """Store `content` (idempotent); its SHA-256."""

    async def get(self, tenant_id: str, digest: str) -> bytes | None:
        """The bytes stored under `digest` for the tenant, or None."""

    async def exists(self, tenant_id: str, digest: str) -> bool:
        """Whether the tenant has a blob `digest`."""


class BlobIntegrityError(RuntimeError):
    """A stored blob no longer hashes to its key (disk corruption or tampering)."""


class FilesystemBlobStore:
    """Blobs as files `<root>/<tenant>/<sha[:2]>/<sha>`, written atomically (temp file + rename) and
    checked against their hash when read."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def _path(self, tenant_id: str, digest: str) -> Path:
        return self.root / blob_path(tenant_id, digest)

    async def put(self, tenant_id: str, content: bytes) -> str:
        digest = sha256_of(content)
        path = self._path(tenant_id, digest)
        if not path.exists():
            await asyncio.to_thread(_write_atomically, path, content)
        return digest

    async def get(self, tenant_id: str, digest: str) -> bytes | None:
        path = self._path(tenant_id, digest)
        try:
            content = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        if sha256_of(content) != digest:
            raise BlobIntegrityError(f"blob {digest} of tenant {tenant_id} does not match its hash")
        return content

    async def exists(self, tenant_id: str, digest: str) -> bool:
        return self._path(tenant_id, digest).exists()


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)  # readers see the whole blob or none of it
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def blob_store_from(url: str) -> BlobStore:
    """The store a `blob_store_url` names: file:///abs/path, file:relative/path or a bare path; or
    s3://bucket/prefix[?endpoint=…&region=…] for an S3-compatible bucket (store/s3_blobs.py)."""
    if url.startswith("s3://"):
        from parcours_ingest.store.s3_blobs import S3BlobStore

        return S3BlobStore.from_url(url)
    path = url.removeprefix("file://") if url.startswith("file://") else url.removeprefix("file:")
    return FilesystemBlobStore(path)
