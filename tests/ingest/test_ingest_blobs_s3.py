"""The S3-compatible blob store, against a real local S3 HTTP server (moto's server mode, its own
process): same keys and guarantees as the filesystem store, and ingest running on it end to end."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid

import boto3
import httpx
import pytest

from parcours_devstack.orphans import die_with_parent
from parcours_devstack.ports import free_port, wait_for_port
from parcours_ingest.store.blobs import BlobIntegrityError, blob_store_from

PDF = {"Content-Type": "application/pdf"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    try:
        wait_for_port("127.0.0.1", port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)
        log.close()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    """A fresh bucket on the local S3 server, and the AWS credentials every client reads from the environment."""
    for name, value in (("AWS_ACCESS_KEY_ID", "parcours-test"), ("AWS_SECRET_ACCESS_KEY", "parcours-test-secret"),
                        ("AWS_DEFAULT_REGION", "eu-west-3")):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-3")
    name = f"docs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    return client, name


async def test_content_addressed_per_tenant_on_s3(s3_endpoint, bucket):
    client, name = bucket
    store = blob_store_from(f"s3://{name}/documents?endpoint={s3_endpoint}")
    content = b"%PDF-1.7 an invoice"
    digest = await store.put("acme", content)
    assert digest == hashlib.sha256(content).hexdigest()
    assert await store.put("acme", content) == digest  # idempotent
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"]]
    assert keys == [f"documents/acme/{digest[:2]}/{digest}"]
    assert await store.get("acme", digest) == content and await store.exists("acme", digest)
    assert await store.get("globex", digest) is None and not await store.exists("globex", digest)

    client.put_object(Bucket=name, Key=keys[0], Body=b"altered behind our back")
    with pytest.raises(BlobIntegrityError):
        await store.get("acme", digest)
    with pytest.raises(ValueError):
        await store.get("acme", "../" + digest[3:])


async def test_ingest_keeps_its_documents_in_the_bucket(run_service, tenant_key, make_invoice, documents,
                                                        s3_endpoint, bucket):
    client, name = bucket
    ingest = await run_service("ingest", blob_store_url=f"s3://{name}?endpoint={s3_endpoint}")
    acme = {"Authorization": f"Bearer {await tenant_key(ingest, tenant_id='acme')}"}
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as http:
        cgv = await http.put("/v1/cgv", content=documents.text_pdf("CGV S3"), headers={**acme, **PDF})
        assert cgv.status_code == 200, cgv.text
        invoice_id = (await http.post("/v1/invoices", json=make_invoice(), headers=acme)).json()["invoice_id"]
        facturx = await http.get(f"/v1/invoices/{invoice_id}/facturx", headers=acme)
        assert facturx.status_code == 200 and documents.page_texts(facturx.content)[-1] == "CGV S3"
        assert (await http.get(f"/v1/invoices/{invoice_id}/facturx", headers=acme)).content == facturx.content
    stored = {o["Key"].rsplit("/", 1)[1] for o in client.list_objects_v2(Bucket=name)["Contents"]}
    assert {cgv.json()["sha256"], hashlib.sha256(facturx.content).hexdigest()} <= stored
    assert len(stored) == 3  # the CGV, the rendered pages, the Factur-X
