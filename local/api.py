"""The HTTP API on localhost: each request becomes an API Gateway HTTP API (payload 2.0) event for the API
function, and its response goes back as HTTP, as API Gateway does.

Routes come from template.yaml (``POST /runs``, ``GET /runs/{run_id}``, ``DELETE /runs/{run_id}``); other
paths get API Gateway's ``404 {"message":"Not Found"}`` and a failed invocation its ``500``. IAM
authorization cannot be checked locally: requests need no signature, and every caller is ``CALLER_ARN``.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

from local.lambdas import FunctionError, LocalFunction
from local.template import ACCOUNT

logger = logging.getLogger(__name__)
CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/local-stack"
API_ID = "localapi01"


def route_pattern(route_key: str) -> tuple[str, re.Pattern[str]]:
    method, path = route_key.split(" ", 1)
    regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return method, re.compile(f"^{regex}$")


def http_api_event(
    route_key: str,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    path_parameters: dict[str, str],
    source_ip: str,
) -> dict[str, Any]:
    now = time.time()
    try:
        text, encoded = body.decode(), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    host = headers.get("host", "127.0.0.1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "authorizer": {
                "iam": {
                    "accessKey": "LOCALSTACKACCESSKEY",
                    "accountId": ACCOUNT,
                    "callerId": "local-stack",
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": CALLER_ARN,
                    "userId": "local-stack",
                }
            },
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = dict(parse_qsl(query))
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = text
    return event


def make_server(function: LocalFunction, route_keys: list[str], host: str, port: int) -> ThreadingHTTPServer:
    routes = [(key, *route_pattern(key)) for key in route_keys]

    class Handler(BaseHTTPRequestHandler):
        responded = False

        def _respond(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.responded = True
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            try:
                self._route()
            except Exception as error:  # API Gateway answers 500, it does not drop the connection
                logger.exception("API %s %s failed", self.command, self.path)
                if self.responded:  # the answer was on its way: nothing sensible left to send
                    return
                body = json.dumps({"message": f"Internal Server Error: {type(error).__name__}: {error}"})
                self._respond(500, body.encode(), {"Content-Type": "application/json"})

        def _route(self) -> None:
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            found = [
                (key, m)
                for key, method, pattern in routes
                if method == self.command and (m := pattern.match(url.path))
            ]
            if not found:
                self._respond(404, b'{"message":"Not Found"}', {"Content-Type": "application/json"})
                return
            route_key, match = found[0]
            headers = {name.lower(): value for name, value in self.headers.items()}
            event = http_api_event(
                route_key,
                self.command,
                url.path,
                url.query,
                headers,
                body,
                match.groupdict(),
                self.client_address[0],
            )
            try:
                response = function.invoke(event)
            except FunctionError as error:
                logger.error("API %s: %s", route_key, error)
                self._respond(
                    500, b'{"message":"Internal Server Error"}', {"Content-Type": "application/json"}
                )
                return
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
            out = {name: str(value) for name, value in (response.get("headers") or {}).items()}
            self._respond(int(response.get("statusCode", 200)), data, out)
            logger.info("API %s %s -> %s", self.command, url.path, response.get("statusCode"))

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _handle

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("api %s", format % args)

    return ThreadingHTTPServer((host, port), Handler)
