"""Join a header and a folder's part files into one file, without holding the data in memory.

Locally this is a stream copy. On S3 it is one multipart upload: S3 copies the bulk of large part files
server-side (UploadPartCopy), and only the header, small files and the bytes needed to bring a part up to
S3's minimum part size pass through a buffer of one minimum part size.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from featurizer import storage

log = logging.getLogger(__name__)
_PART_NUMBER = re.compile(r"part-(\d+)")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part of a multipart upload but the last
MAX_COPY_SIZE = 5 * 1024**3  # S3's maximum for one part
MAX_PARTS = 10_000
READ_CHUNK = 1024 * 1024


class ConcatError(Exception):
    """The part files cannot be joined, or the joined file is not what they add up to."""


@dataclass(frozen=True)
class Span:
    """Bytes [start, end) of a source: source 0 is the header, source i >= 1 the i-th part file."""

    source: int
    start: int
    end: int


@dataclass(frozen=True)
class Part:
    """One part of the multipart upload: a server-side copy of one span, or spans uploaded from a buffer."""

    spans: tuple[Span, ...]
    copy: bool = False


def concat_folder(folder: str, target: str, header: bytes, *, min_part_size: int = MIN_PART_SIZE) -> None:
    """Write `header` then the folder's "part-*" files, in part-number order, as `target`; then delete it."""
    if storage.is_s3(folder) != storage.is_s3(target):
        raise storage.StorageError(f"cannot join {folder} into {target}: both must be on S3 or both local")
    root = folder.rstrip("/") + "/"
    # Only the committed part files, directly in the folder: a failed attempt's leftovers sit in
    # _temporary/ and must not be joined. Numbered order is the sort order (orderBy's range partitions).
    files = sorted(
        (
            (uri, size)
            for uri, size in storage.iter_sizes(folder)
            if "/" not in _relative(uri, root) and _name(uri).startswith("part-")
        ),
        key=lambda item: _part_number(item[0]),
    )
    if storage.is_s3(target):
        _concat_s3(target, header, files, min_part_size)
    else:
        _concat_local(target, header, [uri for uri, _ in files])
    expected, written = len(header) + sum(size for _, size in files), storage.size(target)
    if written != expected:
        raise ConcatError(
            f"{target} has {written} bytes, but the header and the part files of {folder} have {expected}"
        )
    storage.delete_tree(folder)


def plan_parts(sizes: Sequence[int], min_part_size: int = MIN_PART_SIZE) -> list[Part]:
    """The multipart upload for sources of these sizes (sizes[0] is the header's), in order.

    A buffer fills with spans until it holds exactly `min_part_size` bytes and becomes a part. A part
    file goes to S3's server-side copy when the buffer is empty and at least `min_part_size` of the file
    is left; when the buffer is partly full, the file's head tops it up first and the copy takes the rest.
    """
    parts: list[Part] = []
    spans: list[Span] = []
    filled = 0
    for source, size in enumerate(sizes):
        start = 0
        while start < size:
            if source and not spans and size - start >= min_part_size:
                parts.extend(_copies(source, start, size))
                break
            end = min(size, start + min_part_size - filled)
            spans.append(Span(source, start, end))
            filled += end - start
            start = end
            if filled == min_part_size:
                parts.append(Part(tuple(spans)))
                spans, filled = [], 0
    if spans:
        parts.append(Part(tuple(spans)))
    if len(parts) > MAX_PARTS:
        raise ConcatError(
            f"joining {sum(sizes)} bytes takes {len(parts)} multipart parts and S3 allows {MAX_PARTS}: "
            "write fewer, larger part files"
        )
    return parts


def _copies(source: int, start: int, end: int) -> list[Part]:
    """Server-side copies of [start, end), split evenly when longer than S3's largest part."""
    count = math.ceil((end - start) / MAX_COPY_SIZE)
    bounds = [start + (end - start) * i // count for i in range(count + 1)]
    return [Part((Span(source, a, b),), copy=True) for a, b in pairwise(bounds)]


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def _relative(uri: str, root: str) -> str:
    """The path under `root` (iter_sizes gives local files as plain paths, S3 objects as URIs)."""
    prefix = root if storage.is_s3(root) else str(storage.local_path(root)) + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


def _part_number(uri: str) -> int:
    """part-00012-<uuid>-c000.csv -> 12 (names sort wrongly past part-99999)."""
    return int(_PART_NUMBER.match(_name(uri)).group(1))


def _concat_local(target: str, header: bytes, files: list[str]) -> None:
    path = storage.local_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as out:
            out.write(header)
            for uri in files:
                with storage.local_path(uri).open("rb") as part:
                    shutil.copyfileobj(part, out)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _concat_s3(target: str, header: bytes, files: list[tuple[str, int]], min_part_size: int) -> None:
    sizes = [len(header), *(size for _, size in files)]
    plan = plan_parts(sizes, min_part_size)
    client = storage.s3_client()
    dest = storage.parse_s3(target)
    sources = [storage.parse_s3(uri) for uri, _ in files]

    def buffered(part: Part) -> bytearray:
        buffer = bytearray()
        for span in part.spans:
            if span.source == 0:
                buffer += header[span.start : span.end]
                continue
            src = sources[span.source - 1]
            body = client.get_object(Bucket=src.bucket, Key=src.key, Range=_range(span))["Body"]
            for chunk in body.iter_chunks(READ_CHUNK):
                buffer += chunk
        return buffer

    def send(number: int, part: Part, upload_id: str) -> dict[str, Any]:
        where = {"Bucket": dest.bucket, "Key": dest.key, "UploadId": upload_id, "PartNumber": number}
        if not part.copy:
            return {"PartNumber": number, "ETag": client.upload_part(Body=buffered(part), **where)["ETag"]}
        (span,) = part.spans
        src = sources[span.source - 1]
        whole = span.start == 0 and span.end == sizes[span.source]
        copied = client.upload_part_copy(
            CopySource={"Bucket": src.bucket, "Key": src.key},
            **({} if whole else {"CopySourceRange": _range(span)}),
            **where,
        )
        return {"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]}

    if not plan or (len(plan) == 1 and not plan[0].copy):
        client.put_object(Bucket=dest.bucket, Key=dest.key, Body=buffered(plan[0]) if plan else b"")
        return
    upload_id = client.create_multipart_upload(Bucket=dest.bucket, Key=dest.key)["UploadId"]
    try:
        done = [send(number, part, upload_id) for number, part in enumerate(plan, start=1)]
        client.complete_multipart_upload(
            Bucket=dest.bucket, Key=dest.key, UploadId=upload_id, MultipartUpload={"Parts": done}
        )
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=dest.bucket, Key=dest.key, UploadId=upload_id)
        except Exception:  # the bucket's lifecycle rule removes it later; keep the error that matters
            log.warning("could not abort multipart upload %s of %s", upload_id, target, exc_info=True)
        raise


def _range(span: Span) -> str:
    return f"bytes={span.start}-{span.end - 1}"
