"""Is this request from CloudFront? The x-origin-verify header says so, or it is refused.

API Gateway HTTP APIs cannot carry a WAF; CloudFront (with the WAF) adds this
header with a secret value, so a request sent straight to the execute-api URL
lacks it and gets 403 before any lookup.
"""

from __future__ import annotations

import hmac

ORIGIN_VERIFY_HEADER = "x-origin-verify"


def from_cloudfront(event: dict, expected: str) -> bool:
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return False
    given = headers.get(ORIGIN_VERIFY_HEADER)
    if given is None:  # API Gateway lowercases names; a hand-made event may not
        given = next(
            (
                v
                for k, v in headers.items()
                if isinstance(k, str) and k.lower() == ORIGIN_VERIFY_HEADER
            ),
            None,
        )
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


FORBIDDEN = {
    "statusCode": 403,
    "headers": {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
    "body": "forbidden\n",
}
