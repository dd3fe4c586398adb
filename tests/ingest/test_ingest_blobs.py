"""The blob store: content-addressed (SHA-256) per tenant, written atomically, checked when read;
the filesystem implementation behind the BlobStore interface (S3: test_ingest_blobs_s3.py)."""

from __future__ import annotations

import hashlib

import pytest

from parcours_ingest.store.blobs import BlobIntegrityError, FilesystemBlobStore, blob_store_from


async def test_content_addressed_per_tenant(tmp_path):
    store = FilesystemBlobStore(tmp_path)
    content = b"%PDF-1.7 an invoice"
    digest = await store.put("acme", content)
    assert digest == hashlib.sha256(content).hexdigest()
    assert await store.put("acme", content) == digest  # idempotent: stored once
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [digest]
    assert await store.get("acme", digest) == content and await store.exists("acme", digest)
    # another tenant neither sees nor reads it
    assert await store.get("globex", digest) is None and not await store.exists("globex", digest)


async def test_a_tampered_blob_is_refused_and_keys_cannot_escape_the_root(tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    digest = await store.put("acme", b"original")
    path = tmp_path / "blobs" / "acme" / digest[:2] / digest
    path.write_bytes(b"altered")
    with pytest.raises(BlobIntegrityError):
        await store.get("acme", digest)
    for tenant, key in (("acme", "../../etc/passwd"), ("../acme", digest), ("acme", digest.upper())):
        with pytest.raises(ValueError):
            await store.get(tenant, key)
    assert not list((tmp_path / "blobs" / "acme").rglob(".incoming-*"))  # no temp file left behind


def test_store_from_url(tmp_path):
    assert isinstance(blob_store_from(f"file://{tmp_path}"), FilesystemBlobStore)
    assert blob_store_from(f"file://{tmp_path}").root == tmp_path
    assert blob_store_from("file:.parcours/blobs").root.as_posix() == ".parcours/blobs"
    s3 = blob_store_from("s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-3")
    assert (type(s3).__name__, s3.bucket, s3.prefix) == ("S3BlobStore", "bucket", "some/prefix")
    for url in ("s3:///prefix", "s3://bucket/?secret=x"):
        with pytest.raises(ValueError, match="S3"):
            blob_store_from(url)
