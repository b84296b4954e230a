"""The redirect's hit path on the DynamoDB store, with the service's own lean reader.

Imports the redirect function's module too, so its whole import cost is counted;
the lookup is DynamoLinks' (pointer once, then one GetItem), the answer built
with the link model like the handler builds it.
"""

import os

from functions import redirect  # noqa: F401 - counted: what the function container imports
from functions.dynamo_store import DynamoLinks
from functions.lean_dynamo import LeanDynamo
from functions.links.model import redirect_location, request_slug

REGION = os.environ["AWS_REGION"]
links = DynamoLinks(LeanDynamo(REGION), os.environ["LINK_TABLE"], REGION)


def handler(event, context):
    slug = request_slug(event["rawPath"])
    link = links.lookup(slug)[0] if slug else None
    if link is None:
        return {"statusCode": 404, "body": ""}
    location = redirect_location(link, event.get("rawQueryString") or "")
    return {"statusCode": link.status, "headers": {"Location": location}, "body": ""}
