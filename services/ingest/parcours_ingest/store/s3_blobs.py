"""The blob store on an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage…): the same interface and
keys as on the filesystem — `<prefix>/<tenant>/<sha[:2]>/<sha>` — and the same hash check on read.
`blob_store_url` = s3://bucket/prefix, optionally `?endpoint=http://host:port&region=…` for a
service other than AWS (path-style addressing then). Credentials come from the usual AWS chain
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, or the pod's role), never from the URL.
The bucket is created by whoever runs the service, not by the service."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

from parcours_ingest.store.blobs import BlobIntegrityError, blob_path, sha256_of


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None, region: str | None = None):
        import boto3  # only deployments that choose S3 load it
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix.strip("/")
        config = Config(s3={"addressing_style": "path"} if endpoint else {}, retries={"mode": "standard"})
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"an S3 blob store URL names its bucket: s3://bucket/prefix, got {url!r}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise ValueError(f"unknown S3 blob store option(s): {', '.join(sorted(unknown))}")
        return cls(parts.netloc, parts.path, endpoint=query.get("endpoint"), region=query.get("region"))

    def _key(self, tenant_id: str, digest: str) -> str:
        path = blob_path(tenant_id, digest)
        return f"{self.prefix}/{path}" if self.prefix else path

    async def put(self, tenant_id: str, content: bytes) -> str:
        digest = sha256_of(content)
        key = self._key(tenant_id, digest)
        if not await self._exists(key):
            await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key, Body=content,
                                    ContentType="application/octet-stream")
        return digest

    async def get(self, tenant_id: str, digest: str) -> bytes | None:
        try:
            response = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket,
                                               Key=self._key(tenant_id, digest))
        except self.client.exceptions.NoSuchKey:
            return None
        content = await asyncio.to_thread(response["Body"].read)
        if sha256_of(content) != digest:
            raise BlobIntegrityError(f"blob {digest} of tenant {tenant_id} does not match its hash")
        return content

    async def exists(self, tenant_id: str, digest: str) -> bool:
        return await self._exists(self._key(tenant_id, digest))

    async def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True
