"""S3 (MinIO locally) client and the project's bucket."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storage.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def client(settings: Settings) -> "S3Client":
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
    )


def ensure_bucket(settings: Settings) -> bool:
    """Create the bucket if it is missing; True when it was created now."""
    s3 = client(settings)
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if settings.s3_bucket in existing:
        return False
    s3.create_bucket(Bucket=settings.s3_bucket)
    return True
