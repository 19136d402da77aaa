"""S3 (MinIO locally) client and the project's bucket."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from settings.errors import UserError
from storage.errors import START_STACK
from settings.environment import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def client(settings: Settings) -> "S3Client":
    import boto3
    from botocore.config import Config

    access_key, secret_key = require_credentials(settings)
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
        # The scheme of the endpoint decides TLS; an https endpoint is verified against
        # AWS_CA_BUNDLE when set, else the system's CAs.
        verify=settings.s3_ca_bundle or True,
    )


def require_credentials(settings: Settings) -> tuple[str, str]:
    """The S3 key pair, or a UserError saying where it comes from. (Spark's S3A connector
    is given the same pair, so boto3's other sources are not consulted here either.)"""
    access_key, secret_key = settings.s3_credentials()
    if not (access_key and secret_key):
        raise UserError(f"no S3 credentials for {settings.s3_endpoint}: set AWS_ACCESS_KEY_ID and "
                        f"AWS_SECRET_ACCESS_KEY, or {START_STACK} (it generates them for the local MinIO "
                        f"in {settings.run_dir})")
    return access_key, secret_key


def ensure_bucket(settings: Settings) -> bool:
    """Create the bucket if it is missing; True when it was created now."""
    s3 = client(settings)
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if settings.s3_bucket in existing:
        return False
    s3.create_bucket(Bucket=settings.s3_bucket)
    return True


CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".css": "text/css",
                 ".js": "application/javascript", ".png": "image/png", ".svg": "image/svg+xml"}


def upload_folder(settings: Settings, folder: Path, prefix: str) -> int:
    """Upload every file under ``folder`` to ``s3://<bucket>/<prefix>/...`` (same relative
    paths, overwriting); returns the number of files."""
    s3 = client(settings)
    count = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}"
            content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
            s3.upload_file(str(path), settings.s3_bucket, key, ExtraArgs={"ContentType": content_type})
            count += 1
    return count


def delete_prefix(settings: Settings, prefix: str = "") -> int:
    """Delete every object of the bucket whose key starts with ``prefix``; returns how many."""
    s3 = client(settings)
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=settings.s3_bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` (or ``s3a://``) -> (bucket, key)."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme not in ("s3", "s3a") or not bucket or not key:
        raise ValueError(f"not an S3 object URI: {uri!r}")
    return bucket, key
