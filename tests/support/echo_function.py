"""A function that answers with the event it received, for testing the local API Gateway."""

import json


def handler(event, context):
    if event.get("rawPath") == "/boom" or event.get("boom"):
        raise RuntimeError("boom")
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
