"""The same DynamoDB lookup with boto3: the pointer once, then one get_item."""

import os

import boto3

from functions.links.dynamo_items import value_at
from functions.links.model import decode_value, request_slug

TABLE = os.environ["LINK_TABLE"]
client = boto3.client("dynamodb")
pointer = client.get_item(TableName=TABLE, Key={"pk": {"S": f"_region#{os.environ['AWS_REGION']}"}})
generation = int(pointer["Item"]["g"]["N"])


def handler(event, context):
    slug = request_slug(event["rawPath"])
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": slug}}).get("Item") if slug else None
    value = value_at(item["e"]["S"], generation) if item else None
    if value is None:
        return {"statusCode": 404, "body": ""}
    link = decode_value(value.encode())
    return {"statusCode": link.status, "headers": {"Location": link.url}, "body": ""}
