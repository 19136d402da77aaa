"""A bare ASGI route served exactly as ``viewcount serve`` serves the API
(``serving.command.serve``: the same uvicorn options, HTTP parser, event loop, listening
socket and workers): the floor ``bench/serving_latency.py`` sets the API's CPU per request
beside. Every GET answers the same small JSON, the size of a views answer.

    .venv/bin/python bench/bare_server.py --port 18081 [--workers N]
"""

from __future__ import annotations

import argparse
import sys

from serving import command

BODY = (b'{"video_id":"bench-00000","start":"2026-12-05T18:00:00Z","end":"2026-12-08T00:00:00Z",'
        b'"views":0,"batch_views":0,"speed_views":0,"final":false,"provisional_days":[]}')
HEADERS = [(b"content-length", str(len(BODY)).encode()), (b"content-type", b"application/json")]


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    command.add_arguments(parser)
    # Imported by name ("bare_server:app"), as each of several workers must: this folder
    # is on the path of a script run from it, and the workers inherit that path.
    return command.serve(parser.parse_args(argv), "bare_server:app", factory=False)


if __name__ == "__main__":
    sys.exit(main())
