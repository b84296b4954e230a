"""A function that answers with the event it received, for testing the local API Gateway."""

import itertools
import json
import time

_answers = itertools.count(1)


def handler(event, context):
    if event.get("rawPath") == "/boom" or event.get("boom"):
        raise RuntimeError("boom")
    if event.get("rawPath", "").startswith("/cached/"):  # a cacheable redirect, new every time
        if event["rawPath"] == "/cached/slow":
            time.sleep(0.3)
        return {
            "statusCode": 302,
            "headers": {
                "Location": f"https://example.com/answer/{next(_answers)}",
                "Cache-Control": "public, max-age=300",
            },
            "body": "",
        }
    if "Records" in event or "ping" in event:
        return {"received": event, "function": context.function_name}
    return {
        "statusCode": 200,
        "headers": {
            "Content-Type": "application/json",
            "X-Remaining": str(context.get_remaining_time_in_millis()),
        },
        "cookies": ["a=1; Path=/", "b=2; Path=/"],
        "body": json.dumps(event),
    }
