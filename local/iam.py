"""The job runtime role's S3 permissions, enforced by the local S3 as AWS enforces them.

moto checks no IAM; here the S3 requests signed with the job's own access key (`JOB_CREDENTIALS`, which
the local EMR gives every job run) are held to the S3 statements of template.yaml's JobRuntimeRole, and
refused with S3's 403 AccessDenied otherwise. Every other caller (the Lambdas, the stack, the tests) is
let through, as moto does. The policy is written to `<state dir>/job-role-policy.json` at start and read
again whenever that file changes, so a test can take a permission away from a running stack.

Emulated: Allow statements on S3 buckets and objects, with `*` wildcards, and the S3 actions of the
requests the job makes (list, get, head, put, multipart, delete, batch delete, copy). Not emulated:
conditions (a statement with one never matches), Deny statements, other services (the job's
requests to them are let through).
"""

from __future__ import annotations

import fnmatch
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

from local.template import ACCOUNT, REGION, load_template

JOB_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local-job-runtime-role",
    "AWS_SECRET_ACCESS_KEY": "local-job-runtime-role",
    "AWS_SESSION_TOKEN": "local-job-runtime-role",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
ROLE = "JobRuntimeRole"
POLICY_FILE = "job-role-policy.json"
# A SigV4 credential scope (in the Authorization header, or a presigned URL's query): key/date/region/service
_CREDENTIAL = re.compile(r"Credential=([^/%,\s&]+)(?:/|%2F)[^/%]+(?:/|%2F)[^/%]+(?:/|%2F)([^/%]+)", re.I)


def _denied(message: str = "Access Denied (the local stack's emulation of the job runtime role)") -> bytes:
    """S3's error document, so that SDKs read it as the AccessDenied it is."""
    root = ElementTree.Element("Error")
    ElementTree.SubElement(root, "Code").text = "AccessDenied"
    ElementTree.SubElement(root, "Message").text = message
    return ElementTree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, action: str, resource: str) -> bool:
        return any(fnmatch.fnmatchcase(action, a) for a in self.actions) and any(
            fnmatch.fnmatchcase(resource, r) for r in self.resources
        )


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _arn(value: Any, buckets: dict[str, str]) -> str | None:
    """An S3 resource of the template as an ARN (`!GetAtt Bucket.Arn`, `!Sub "${Bucket.Arn}/..."`)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        logical, attribute = value["Fn::GetAtt"]
        return f"arn:aws:s3:::{buckets[logical]}" if attribute == "Arn" and logical in buckets else None
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for logical, name in buckets.items():
            text = text.replace(f"${{{logical}.Arn}}", f"arn:aws:s3:::{name}")
        return None if "${" in text else text
    return None


def job_role_statements(buckets: dict[str, str]) -> list[Statement]:
    """The S3 Allow statements of template.yaml's job runtime role, with the local buckets' names."""
    role = load_template()["Resources"][ROLE]["Properties"]
    found = []
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            arns = [arn for r in _listed(statement.get("Resource", [])) if (arn := _arn(r, buckets))]
            if statement["Effect"] == "Allow" and arns and "Condition" not in statement:
                found.append(
                    Statement(statement.get("Sid", ""), tuple(_listed(statement["Action"])), tuple(arns))
                )
    return found


class PolicyUnreadable(ValueError):
    """The policy file is not a list of statements with Action and Resource."""


def write_policy(path: Path, statements: Iterable[Statement]) -> None:
    """Written whole, then renamed: a request never reads half a policy."""
    listed = [{"Sid": s.sid, "Action": list(s.actions), "Resource": list(s.resources)} for s in statements]
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(listed, indent=2))
    partial.replace(path)


def read_policy(path: Path) -> list[Statement]:
    """The statements of a policy file (as write_policy writes it, or edited by hand: an Action or Resource
    may be one string or a list)."""
    try:
        return [
            Statement(s.get("Sid", ""), tuple(_listed(s["Action"])), tuple(_listed(s["Resource"])))
            for s in json.loads(path.read_text())
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PolicyUnreadable(
            f"{path}: {error!r}; expected a JSON list of statements like "
            '{"Sid": "...", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::bucket/*"]}'
        ) from error


def s3_requests(
    method: str, path: str, query: dict[str, list[str]], headers: Any
) -> Iterator[tuple[str, str]]:
    """(action, resource ARN) pairs one path-style S3 request needs (batch deletes aside: see below)."""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method in ("GET", "HEAD") and not ({"uploads", "location", "versioning", "policy"} & set(query)):
            yield "s3:ListBucket", bucket_arn
        elif method == "GET" and "uploads" in query:
            yield "s3:ListBucketMultipartUploads", bucket_arn
        else:
            yield f"s3:{method}Bucket({'&'.join(sorted(query))})", bucket_arn  # no such action: refused
        return
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        yield ("s3:ListMultipartUploadParts" if "uploadId" in query else "s3:GetObject"), object_arn
    elif method in ("PUT", "POST"):
        yield "s3:PutObject", object_arn
        if source := headers.get("x-amz-copy-source"):
            yield "s3:GetObject", f"arn:aws:s3:::{unquote(source).lstrip('/').split('?', 1)[0]}"
    elif method == "DELETE":
        yield ("s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"), object_arn


def _batch_delete_result(deleted: list[str], refused: list[str], quiet: bool) -> bytes:
    """DeleteObjects' answer: S3 refuses a batch's keys one by one, in a 200, and deletes the others."""
    root = ElementTree.Element("DeleteResult", xmlns="http://s3.amazonaws.com/doc/2006-03-01/")
    for key in [] if quiet else deleted:
        ElementTree.SubElement(ElementTree.SubElement(root, "Deleted"), "Key").text = key
    for key in refused:
        error = ElementTree.SubElement(root, "Error")
        for tag, text in (("Key", key), ("Code", "AccessDenied"), ("Message", "Access Denied")):
            ElementTree.SubElement(error, tag).text = text
    return ElementTree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _refuse(start_response: Callable[..., Any], body: bytes) -> list[bytes]:
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


class JobRoleEnforcer:
    """WSGI middleware in front of moto: the job's S3 requests get only what its role allows."""

    def __init__(self, app: Callable[..., Any], policy: Path) -> None:
        self.app = app
        self.policy = policy
        self._loaded: tuple[tuple[int, int, int], list[Statement]] = ((-1, -1, -1), [])

    def statements(self) -> list[Statement]:
        """The policy file's statements, read again whenever the file is replaced or changes."""
        status = self.policy.stat()
        version = (status.st_ino, status.st_mtime_ns, status.st_size)
        if version != self._loaded[0]:
            self._loaded = (version, read_policy(self.policy))
        return self._loaded[1]

    def allowed(self, action: str, arn: str) -> bool:
        return any(statement.allows(action, arn) for statement in self.statements())

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        credential = _CREDENTIAL.search(
            environ.get("HTTP_AUTHORIZATION", "") + " " + environ.get("QUERY_STRING", "")
        )
        if not credential or credential.groups() != (JOB_CREDENTIALS["AWS_ACCESS_KEY_ID"], "s3"):
            return self.app(environ, start_response)
        try:
            self.statements()
        except PolicyUnreadable as error:
            return _refuse(start_response, _denied(f"the job role's policy cannot be read: {error}"))
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if method == "POST" and "delete" in query:
            return self._batch_delete(environ, start_response, unquote(path).strip("/"))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if all(self.allowed(action, arn) for action, arn in s3_requests(method, path, query, headers)):
            return self.app(environ, start_response)
        return _refuse(start_response, b"" if method == "HEAD" else _denied())

    def _batch_delete(self, environ: dict[str, Any], start_response: Callable[..., Any], bucket: str) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        request = ElementTree.fromstring(body)
        keys = [e.text or "" for e in request.iter() if e.tag.endswith("Key")]
        refused = [k for k in keys if not self.allowed("s3:DeleteObject", f"arn:aws:s3:::{bucket}/{k}")]
        if not refused:
            return self.app(environ, start_response)
        from moto.s3.models import s3_backends  # the server runs in this process

        deleted = [k for k in keys if k not in refused]
        for key in deleted:
            s3_backends[ACCOUNT]["aws"].delete_object(bucket, key)
        quiet = any(e.tag.endswith("Quiet") and (e.text or "").lower() == "true" for e in request.iter())
        answer = _batch_delete_result(deleted, refused, quiet)
        start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(answer)))])
        return [answer]
