"""Small-file I/O on the run's locations, local or S3: flags, JSON, listings, clean-up.

Spark writes the DataFrames; this module handles what sits beside them. On S3 it uses boto3 (which
honours AWS_ENDPOINT_URL, so a local S3-compatible server works unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

S3_SCHEMES = ("s3", "s3a")


class StorageError(Exception):
    """A location cannot be read or written."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def parse_s3(uri: str) -> S3Location:
    parsed = urlparse(uri)
    if parsed.scheme not in S3_SCHEMES or not parsed.netloc:
        raise StorageError(f"{uri!r} is not an s3://bucket/key URI")
    return S3Location(parsed.netloc, parsed.path.lstrip("/"))


def local_path(uri: str) -> Path:
    """The filesystem path of a local path or file:// URI."""
    return Path(urlparse(uri).path) if uri.startswith("file:") else Path(uri)


def spark_uri(uri: str) -> str:
    """The URI Spark should read or write: absolute file:// for local paths, s3:// kept as is.

    Not percent-encoded: Hadoop's Path takes the characters as they are ("My Pictures", "é", "%", "#").
    """
    if is_s3(uri):
        return uri
    return f"file://{local_path(uri).resolve()}"


def _folder_prefix(key: str) -> str:
    """The S3 prefix of the objects inside a folder key ("" for the bucket's root)."""
    return key.rstrip("/") + "/" if key.strip("/") else ""


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


@cache
def s3_client() -> Any:
    import boto3

    return boto3.client("s3")


def write_bytes(uri: str, data: bytes, content_type: str | None = None) -> None:
    """Write a file; on S3, `content_type` lets a browser show it (e.g. an HTML page) instead of saving it."""
    if is_s3(uri):
        loc = parse_s3(uri)
        extra = {"ContentType": content_type} if content_type else {}
        s3_client().put_object(Bucket=loc.bucket, Key=loc.key, Body=data, **extra)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(uri: str, payload: Any) -> None:
    write_bytes(uri, (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode())


def read_bytes(uri: str) -> bytes:
    if is_s3(uri):
        loc = parse_s3(uri)
        return s3_client().get_object(Bucket=loc.bucket, Key=loc.key)["Body"].read()
    return local_path(uri).read_bytes()


def exists(uri: str) -> bool:
    """Whether a file exists."""
    if is_s3(uri):
        loc = parse_s3(uri)
        try:
            s3_client().head_object(Bucket=loc.bucket, Key=loc.key)
        except s3_client().exceptions.ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey"):
                return False
            raise
        return True
    return local_path(uri).is_file()


def size(uri: str) -> int:
    """A file's size in bytes."""
    if is_s3(uri):
        loc = parse_s3(uri)
        return s3_client().head_object(Bucket=loc.bucket, Key=loc.key)["ContentLength"]
    return local_path(uri).stat().st_size


def folder_has_files(uri: str) -> bool:
    """Whether a folder holds at least one file (s3://b/inbox/fru does not match inbox/fruits/)."""
    if is_s3(uri):
        loc = parse_s3(uri)
        found = s3_client().list_objects_v2(Bucket=loc.bucket, Prefix=_folder_prefix(loc.key), MaxKeys=1)
        return found.get("KeyCount", 0) > 0
    root = local_path(uri)
    return root.is_dir() and any(p.is_file() for p in root.rglob("*"))


def iter_sizes(uri: str) -> Iterator[tuple[str, int]]:
    """(URI, size in bytes) of every file under a folder, recursively, in the folder's own form."""
    if is_s3(uri):
        loc = parse_s3(uri)
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=loc.bucket, Prefix=_folder_prefix(loc.key)):
            for obj in page.get("Contents", []):
                yield f"{urlparse(uri).scheme}://{loc.bucket}/{obj['Key']}", obj["Size"]
        return
    root = local_path(uri)
    if root.is_dir():
        for path in root.rglob("*"):
            if path.is_file():
                yield str(path), path.stat().st_size


def list_files(uri: str) -> list[str]:
    """Every file under a folder (recursively), as URIs in the folder's own form."""
    return [path for path, _ in iter_sizes(uri)]


def list_folders(uri: str) -> list[str]:
    """Names of the immediate sub-folders of a folder."""
    if is_s3(uri):
        loc = parse_s3(uri)
        prefix = _folder_prefix(loc.key)
        paginator = s3_client().get_paginator("list_objects_v2")
        return [
            common["Prefix"][len(prefix) :].rstrip("/")
            for page in paginator.paginate(Bucket=loc.bucket, Prefix=prefix, Delimiter="/")
            for common in page.get("CommonPrefixes", [])
        ]
    root = local_path(uri)
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def delete_tree(uri: str) -> None:
    """Delete a folder and everything under it; a missing folder is not an error, a failed delete is."""
    if is_s3(uri):
        loc = parse_s3(uri)
        prefix = _folder_prefix(loc.key)
        if not prefix:
            raise StorageError(f"refusing to delete the whole bucket {uri}")
        client = s3_client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                failed = client.delete_objects(Bucket=loc.bucket, Delete={"Objects": keys, "Quiet": True})
                if failed.get("Errors"):
                    first = failed["Errors"][0]
                    raise StorageError(f"cannot delete s3://{loc.bucket}/{first['Key']}: {first['Message']}")
        return
    path = local_path(uri)
    if path.exists():
        shutil.rmtree(path)


def download(uri: str, destination: Path) -> Path:
    """Copy an s3:// object to a local file."""
    loc = parse_s3(uri)
    destination.parent.mkdir(parents=True, exist_ok=True)
    s3_client().download_file(loc.bucket, loc.key, str(destination))
    return destination
