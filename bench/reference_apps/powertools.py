"""The redirect with Powertools' APIGatewayHttpResolver, reading Redis with redis-py."""

import os

import redis
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from functions.links.model import decode_value, link_key, request_slug

app = APIGatewayHttpResolver()
client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=0.1)


@app.get("/<path>")
def redirect(path: str) -> Response:
    slug = request_slug(path)
    value = client.get(link_key(slug)) if slug else None
    if value is None:
        return Response(status_code=404, body="")
    link = decode_value(value)
    return Response(status_code=link.status, headers={"Location": link.url}, body="")


def handler(event, context):
    return app.resolve(event, context)
