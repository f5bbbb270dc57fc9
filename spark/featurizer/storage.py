"""Small-file I/O on the run's locations, local or S3: flags, JSON, listings, clean-up.

Spark writes the DataFrames; this module handles what sits beside them. On S3 it uses boto3 (which
honours AWS_ENDPOINT_URL, so a local S3-compatible server works unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

S3_SCHEMES = ("s3", "s3a")
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
DENIED_CODES = frozenset({"403", "AccessDenied"})


class StorageError(Exception):
    """A location cannot be read or written."""


class AccessDenied(StorageError):
    """S3 refused a request: the message names the permission the job's role lacks."""


class TooLarge(StorageError):
    """A file holds more bytes than the reader would take; they were not read."""

    def __init__(self, uri: str, size: int) -> None:
        super().__init__(f"{uri}: {size} bytes, more than the reader takes")
        self.size = size


def error_code(error: BaseException) -> str | None:
    """S3's error code of a botocore ClientError (None for any other error)."""
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


def is_missing(error: BaseException) -> bool:
    """The file is not there (a refusal is not "missing": S3 answers 403 to a role that may not list)."""
    return isinstance(error, FileNotFoundError) or error_code(error) in MISSING_CODES


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme in S3_SCHEMES


def parse_s3(uri: str) -> S3Location:
    """Bucket and key, taken literally: a key may hold "#", "?" or "%" (file names do)."""
    scheme, separator, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme.lower() not in S3_SCHEMES or not separator or not bucket:
        raise StorageError(f"{uri!r} is not an s3://bucket/key URI")
    return S3Location(bucket, key.lstrip("/"))


def local_path(uri: str) -> Path:
    """The filesystem path of a local path or file: URI (file:/data, file:///data), taken literally."""
    if not uri.startswith("file:"):
        return Path(uri)
    path = uri[len("file:") :]
    if path.startswith("//"):  # file:///data, file://localhost/data
        path = "/" + path[2:].partition("/")[2]
    return Path(path)


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


def _refusal(action: str, loc: S3Location) -> AccessDenied:
    return AccessDenied(
        f"s3://{loc.bucket}/{loc.key}: access denied; the job's role needs {action} there, and "
        f"s3:ListBucket on bucket {loc.bucket} (without it S3 answers 403 for a missing file too)"
    )


@contextmanager
def _permission(action: str, loc: S3Location) -> Iterator[None]:
    """A refused request raises AccessDenied naming `action` (never "not found")."""
    try:
        yield
    except ClientError as error:
        if error_code(error) not in DENIED_CODES:
            raise
        raise _refusal(action, loc) from error


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def region() -> str | None:
    """The AWS region the job's clients are in: boto3's own (AWS_DEFAULT_REGION, its config), else the
    AWS_REGION that EMR Serverless and the start's --conf set."""
    import boto3

    return boto3.session.Session().region_name or os.environ.get("AWS_REGION") or None


# Connections one client keeps open: a Python worker fetches this many images at once (`fetch`).
MAX_CONNECTIONS = 32


@cache
def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    # Standard retries back off on S3's throttling (503 SlowDown) under many small reads.
    config = Config(max_pool_connections=MAX_CONNECTIONS, retries={"mode": "standard", "max_attempts": 10})
    return boto3.client("s3", config=config)


def write_bytes(uri: str, data: bytes, content_type: str | None = None) -> None:
    """Write a file; on S3, `content_type` lets a browser show it (e.g. an HTML page) instead of saving it."""
    if is_s3(uri):
        loc = parse_s3(uri)
        extra = {"ContentType": content_type} if content_type else {}
        with _permission("s3:PutObject", loc):
            s3_client().put_object(Bucket=loc.bucket, Key=loc.key, Body=data, **extra)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(uri: str, payload: Any) -> None:
    write_bytes(uri, (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode())


def read_bytes(uri: str, limit: int | None = None) -> bytes:
    """A file's bytes; TooLarge, with none of its body read, if it holds more than `limit` bytes."""
    if is_s3(uri):
        loc = parse_s3(uri)
        with _permission("s3:GetObject", loc):
            response = s3_client().get_object(Bucket=loc.bucket, Key=loc.key)
        body = response["Body"]
        if limit is not None and response["ContentLength"] > limit:
            body.close()  # drops the connection: cheaper than receiving the object
            raise TooLarge(uri, response["ContentLength"])
        return body.read()
    with local_path(uri).open("rb") as file:
        if limit is None:
            return file.read()
        if (size := os.fstat(file.fileno()).st_size) > limit:
            raise TooLarge(uri, size)
        data = file.read(limit + 1)  # +1: a file that grows while it is read
        if len(data) > limit:
            raise TooLarge(uri, len(data))
        return data


def exists(uri: str) -> bool:
    """Whether a file exists; AccessDenied if S3 will not say."""
    if is_s3(uri):
        loc = parse_s3(uri)
        with _permission("s3:GetObject", loc):
            try:
                s3_client().head_object(Bucket=loc.bucket, Key=loc.key)
            except ClientError as error:
                if error_code(error) in MISSING_CODES:
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
        with _permission("s3:ListBucket", loc):
            found = s3_client().list_objects_v2(Bucket=loc.bucket, Prefix=_folder_prefix(loc.key), MaxKeys=1)
        return found.get("KeyCount", 0) > 0
    root = local_path(uri)
    return root.is_dir() and any(p.is_file() for p in root.rglob("*"))


def _is_marker(key: str) -> bool:
    """S3 "folder" marker objects: `name/` (the console) and `name_$folder$` (older Hadoop tools)."""
    return key.endswith(("/", "_$folder$"))


@dataclass(frozen=True)
class FileEntry:
    """A listed file: its URI in the folder's own form, its size, and what changes when its content does
    without reading it (an S3 object's ETag; a local file's modification time, in nanoseconds)."""

    uri: str
    size: int
    version: str


def _walk(root: Path, recursive: bool) -> Iterator[FileEntry]:
    """Files under a local folder; links to files are followed, links to folders are not (no file is
    listed twice, no loop). Errors (an unreadable folder) raise."""
    folders = [root]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        folders.append(Path(entry.path))
                elif entry.is_file():
                    stat = entry.stat()
                    yield FileEntry(entry.path, stat.st_size, str(stat.st_mtime_ns))


def iter_files(uri: str, recursive: bool = True) -> Iterator[FileEntry]:
    """Every file under a folder, streamed page by page.

    `recursive=False` gives only the files directly in the folder. S3 folder markers are not files.
    """
    if is_s3(uri):
        loc = parse_s3(uri)
        paginator = s3_client().get_paginator("list_objects_v2")
        delimiter = {} if recursive else {"Delimiter": "/"}
        for page in paginator.paginate(Bucket=loc.bucket, Prefix=_folder_prefix(loc.key), **delimiter):
            for obj in page.get("Contents", []):
                if not _is_marker(obj["Key"]):
                    key = f"{urlparse(uri).scheme}://{loc.bucket}/{obj['Key']}"
                    yield FileEntry(key, obj["Size"], obj["ETag"].strip('"'))
        return
    root = local_path(uri)
    if root.is_dir():
        yield from _walk(root, recursive)


def iter_sizes(uri: str, recursive: bool = True) -> Iterator[tuple[str, int]]:
    """(URI, size in bytes) of every file under a folder (`iter_files` without the versions)."""
    for entry in iter_files(uri, recursive):
        yield entry.uri, entry.size


def peek_folders(uri: str, max_files: int | None) -> list[str] | None:
    """Names of a folder's immediate sub-folders; None once more than `max_files` files sit directly in it
    (so a folder of a million images costs one S3 request here, and a folder of 20,000 classes 20)."""
    names: list[str] = []
    files = 0
    if is_s3(uri):
        loc = parse_s3(uri)
        prefix = _folder_prefix(loc.key)
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=loc.bucket, Prefix=prefix, Delimiter="/"):
            names += [
                common["Prefix"][len(prefix) :].rstrip("/") for common in page.get("CommonPrefixes", [])
            ]
            files += sum(1 for obj in page.get("Contents", []) if not _is_marker(obj["Key"]))
            if max_files is not None and files > max_files:
                return None
        return names
    root = local_path(uri)
    if not root.is_dir():
        return []
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                names.append(entry.name)
            elif entry.is_file():
                files += 1
                if max_files is not None and files > max_files:
                    return None
    return sorted(names)


def list_folders(uri: str) -> list[str]:
    """Names of the immediate sub-folders of a folder (however many files sit beside them)."""
    return peek_folders(uri, max_files=None) or []  # never None without a limit


def delete_file(uri: str) -> None:
    """Delete one file; a missing file is not an error."""
    if is_s3(uri):
        loc = parse_s3(uri)
        with _permission("s3:DeleteObject", loc):
            s3_client().delete_object(Bucket=loc.bucket, Key=loc.key)
        return
    local_path(uri).unlink(missing_ok=True)


def delete_tree(uri: str) -> None:
    """Delete a folder and everything under it; a missing folder is not an error, a failed delete is."""
    if is_s3(uri):
        loc = parse_s3(uri)
        prefix = _folder_prefix(loc.key)
        if not prefix:
            raise StorageError(f"refusing to delete the whole bucket {uri}")
        client = s3_client()
        with _permission("s3:ListBucket and s3:DeleteObject", loc):
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    failed = client.delete_objects(Bucket=loc.bucket, Delete={"Objects": keys, "Quiet": True})
                    if failed.get("Errors"):  # S3 refuses a batch's keys one by one, with a 200
                        first = failed["Errors"][0]
                        if first["Code"] in DENIED_CODES:
                            raise _refusal("s3:DeleteObject", S3Location(loc.bucket, first["Key"]))
                        raise StorageError(
                            f"cannot delete s3://{loc.bucket}/{first['Key']}: {first['Message']}"
                        )
        return
    path = local_path(uri)
    if path.exists():
        shutil.rmtree(path)


def copy_file(source: str, destination: str) -> None:
    """Copy one file, between any two locations; S3 to S3 without the bytes passing through here."""
    from boto3.exceptions import S3UploadFailedError
    from boto3.s3.transfer import TransferConfig

    one_stream = TransferConfig(max_concurrency=1)  # copy_tree runs MAX_CONNECTIONS of these at once
    try:
        if is_s3(source) and is_s3(destination):
            src, dst = parse_s3(source), parse_s3(destination)
            with _permission(f"s3:PutObject (and s3:GetObject on {source})", dst):
                copied = {"Bucket": src.bucket, "Key": src.key}
                s3_client().copy(copied, dst.bucket, dst.key, Config=one_stream)
        elif is_s3(source):
            with _permission("s3:GetObject", parse_s3(source)):
                download(source, local_path(destination))
        elif is_s3(destination):
            dst = parse_s3(destination)
            s3_client().upload_file(str(local_path(source)), dst.bucket, dst.key, Config=one_stream)
        else:
            target = local_path(destination)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local_path(source), target)
    except S3UploadFailedError as error:
        raise StorageError(
            f"cannot write {destination} (the job's role needs s3:PutObject there): {error}"
        ) from error
    except (ClientError, FileNotFoundError) as error:
        if not is_missing(error):
            raise
        raise StorageError(f"cannot copy {source}: it is not there") from error


def copy_tree(source: str, destination: str) -> int:
    """Copy every file under a folder into another, keeping their relative paths (MAX_CONNECTIONS at a
    time); returns how many. StorageError if the source holds no file."""
    root = source.rstrip("/") + "/" if is_s3(source) else f"{local_path(source)}/"
    names = [entry.uri.removeprefix(root) for entry in iter_files(source)]
    if not names:
        raise StorageError(f"{source} holds no file to copy")
    with ThreadPoolExecutor(MAX_CONNECTIONS, thread_name_prefix="copy") as pool:
        list(pool.map(lambda name: copy_file(join(source, name), join(destination, name)), names))
    return len(names)


def download(uri: str, destination: Path) -> Path:
    """Copy an s3:// object to a local file."""
    loc = parse_s3(uri)
    destination.parent.mkdir(parents=True, exist_ok=True)
    s3_client().download_file(loc.bucket, loc.key, str(destination))
    return destination
