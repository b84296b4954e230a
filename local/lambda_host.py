"""One region's functions behind a local "API Gateway": HTTP in, payload v2.0 events out.

Run as its own process per function container (its environment is the
function's configuration, as in Lambda):

    python -m local.lambda_host --port 9001 \\
        --route "GET /healthz=functions.health.handler" \\
        --route '$default=functions.redirect.handler' \\
        --invoke sync=functions.sync.handler

`--listen-fd FD` instead of `--port` serves on a listening socket the parent
bound and passed down (so no other process can take the port in between);
`--ready-fd FD` gets a line once the functions are loaded and it serves.

Routes follow HTTP API route keys (`METHOD /path` or `$default`). The event
mirrors what API Gateway sends: lowercased header names, repeated headers
joined with commas, cookies split out, `rawQueryString` as sent, binary bodies
base64, and `rawPath` as HTTP APIs deliver it: percent-decoded exactly once and
cut at a decoded `?` (`/docs%3Fx` arrives as `/docs`). Routes match that same
decoded path.
`--invoke NAME=handler` exposes Lambda's Invoke API
(`POST /2015-03-31/functions/NAME/invocations`) for events such as S3's.
Like a Lambda container, it handles one request at a time.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote

from aiohttp import web

Handler = Callable[[dict, object], object]


class LambdaContext:
    """The attributes handlers commonly read from Lambda's context object."""

    def __init__(self, function_name: str, timeout_s: float = 30):
        region = os.environ.get("AWS_REGION", "local")
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{function_name}"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"))
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(dotted: str) -> Handler:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


async def http_event(request: web.Request, route_key: str) -> dict:
    body = await request.read()
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    cookies = headers.pop("cookie", None)
    raw_path = http_api_raw_path(request.raw_path)
    raw_query = request.query_string
    params: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    try:
        text, is_base64 = body.decode(), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    now = datetime.now(UTC)
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": request.host.split(".", 1)[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "sourceIp": request.remote or "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = [c.strip() for c in cookies.split(";") if c.strip()]
    if params:
        event["queryStringParameters"] = params
    if body:
        event["body"] = text
    return event


def http_api_raw_path(target: str) -> str:
    """The `rawPath` an HTTP API delivers for a request target (path and query as sent).

    Decoded once (an escaped escape stays an escape: `/%2564` -> `/%64`), then
    cut at the first `?` the decoding produced, as HTTP APIs do; REST APIs and
    function URLs would keep the encoding.
    """
    return unquote(target.split("?", 1)[0]).split("?", 1)[0]


def http_response(result: object) -> web.Response:
    """Turn a handler's result into HTTP the way API Gateway does."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return web.json_response(result)  # the "inferred" response format
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    response = web.Response(status=int(result["statusCode"]), body=data)
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


def internal_error(what: str) -> web.Response:
    traceback.print_exc()
    print(json.dumps({"level": "error", "message": f"{what} failed"}), flush=True)
    return web.json_response({"message": "Internal Server Error"}, status=500)


def build_app(routes: dict[str, str], invokes: dict[str, str]) -> web.Application:
    handlers = {key: load_handler(target) for key, target in routes.items()}
    functions = {name: load_handler(target) for name, target in invokes.items()}

    async def route(request: web.Request) -> web.Response:
        key = f"{request.method} {http_api_raw_path(request.raw_path)}"
        route_key = key if key in handlers else "$default"
        handler = handlers.get(route_key)
        if handler is None:
            return web.json_response({"message": "Not Found"}, status=404)
        try:
            event = await http_event(request, route_key)
        except web.RequestPayloadError:
            return web.json_response({"message": "Bad Request"}, status=400)
        try:
            return http_response(handler(event, LambdaContext(route_key)))
        except Exception:
            return internal_error(route_key)

    async def invoke(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in functions:
            return web.json_response({"Message": f"Function not found: {name}"}, status=404)
        try:
            event = await request.json()
        except ValueError:
            return web.json_response({"Message": "invalid JSON payload"}, status=400)
        try:
            result = functions[name](event, LambdaContext(name, timeout_s=900))
        except Exception as exc:
            internal_error(name)
            error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            return web.json_response(error, headers={"X-Amz-Function-Error": "Unhandled"})
        return web.json_response(result)

    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_post("/2015-03-31/functions/{name}/invocations", invoke)
    app.router.add_route("*", "/{tail:.*}", route)
    return app


def parse_pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, target = value.rpartition("=")
        if not sep or not key:
            raise SystemExit(f"--{what} takes KEY=module.handler, got {value!r}")
        pairs[key] = target
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--listen-fd", type=int, help="an inherited listening socket")
    parser.add_argument("--ready-fd", type=int, help="an inherited pipe told when it serves")
    parser.add_argument("--route", action="append", default=[], help="'ROUTE KEY=module.handler'")
    parser.add_argument("--invoke", action="append", default=[], help="NAME=module.handler")
    args = parser.parse_args()
    app = build_app(parse_pairs(args.route, "route"), parse_pairs(args.invoke, "invoke"))
    if args.ready_fd is not None:

        async def tell_ready(_app: web.Application) -> None:
            os.write(args.ready_fd, b"ready\n")
            os.close(args.ready_fd)

        app.on_startup.append(tell_ready)
    if args.listen_fd is not None:
        web.run_app(app, sock=socket.socket(fileno=args.listen_fd), print=None, access_log=None)
    else:
        web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
