"""Where ``ogshot build`` puts images: a folder, or an S3-compatible bucket (AWS S3, Cloudflare R2,
MinIO, ...). Both are synchronous; the build calls them in threads.

Each output lists what it already holds once (a folder walk, or one paginated listing of the
prefix) so that a resumed build knows what to skip without a request per image, and writes an
object only complete: a file appears by an atomic rename, an S3 object by one PUT.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ogshot.core.errors import BadRequest

__all__ = ["Directory", "Output", "S3Bucket", "open_output"]


class Output(Protocol):
    def existing(self) -> set[str]:
        """The relative paths (``article/x.png``) already there."""
        ...

    def write(self, path: str, body: bytes, *, content_type: str, cache_control: str) -> None: ...

    def location(self, path: str) -> str:
        """Where ``path`` ends up, for people: a file path or an ``s3://`` URL."""
        ...


def open_output(target: str, *, s3_endpoint: str | None = None) -> Output:
    """``s3://bucket/prefix`` -> S3Bucket; anything else is a folder."""
    if target.startswith("s3://"):
        parts = urlsplit(target)
        if not parts.netloc:
            raise BadRequest(f"{target!r} names no bucket (use s3://bucket/prefix)")
        return S3Bucket(parts.netloc, parts.path.strip("/"), endpoint=s3_endpoint or None)
    if "://" in target:
        raise BadRequest(f"{target!r}: only folders and s3://bucket/prefix are supported")
    return Directory(Path(target))


class Directory:
    def __init__(self, root: Path) -> None:
        self.root = root

    def existing(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        found = set()
        for folder, _, files in os.walk(self.root):
            for name in files:
                if not name.startswith(".tmp-"):
                    found.add((Path(folder) / name).relative_to(self.root).as_posix())
        return found

    def write(self, path: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        final = self.root / path
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(body)
            os.chmod(temp, 0o644)  # mkstemp's 0600 would hide images from the web server
            os.replace(temp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def location(self, path: str) -> str:
        return str(self.root / path)


class S3Bucket:
    """A bucket and a key prefix. Credentials, region and (unless given) the endpoint come from
    boto3's usual sources: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
    AWS_ENDPOINT_URL, ~/.aws."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise BadRequest("s3:// outputs need boto3: pip install 'ogshot[s3]'") from None
        self.bucket, self.prefix = bucket, prefix
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=32)
        self.client: Any = boto3.client("s3", endpoint_url=endpoint, config=config)

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    def existing(self) -> set[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        found: set[str] = set()
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            ):
                found.update(item["Key"][len(start) :] for item in page.get("Contents", ()))
        except (BotoCoreError, ClientError) as exc:
            raise BadRequest(f"cannot list s3://{self.bucket}/{start}: {exc}") from None
        return found

    def write(self, path: str, body: bytes, *, content_type: str, cache_control: str) -> None:
        self.client.put_object(
            Bucket=self.bucket,
            Key=self._key(path),
            Body=body,
            ContentType=content_type,
            CacheControl=cache_control,
        )

    def location(self, path: str) -> str:
        return f"s3://{self.bucket}/{self._key(path)}"
