"""The redirect as a FastAPI app behind Mangum, reading Redis with redis-py."""

import os

import redis
from fastapi import FastAPI, Response
from mangum import Mangum

from functions.links.model import decode_value, link_key, request_slug

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=0.1)


@app.get("/{path:path}")
def redirect(path: str) -> Response:
    slug = request_slug(path)
    value = client.get(link_key(slug)) if slug else None
    if value is None:
        return Response(status_code=404)
    link = decode_value(value)
    return Response(status_code=link.status, headers={"Location": link.url})


handler = Mangum(app, lifespan="off")
