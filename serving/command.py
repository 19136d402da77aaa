"""``viewcount serve [--host H] [--port P]``: the HTTP API under uvicorn.

Cassandra comes from the usual environment (``Settings.from_env``), the limits from
``serving.limits``. The server starts even while Cassandra is down: ``/healthz`` answers
503 and reads answer 503 until it is back. ``--workers N`` runs N processes on the one
listening socket (one Python process uses at most one core).

The rate limit counts each client by its address (``serving.rate_limit``). Proxy headers
(``X-Forwarded-For``, ``X-Forwarded-Proto``) are believed only from the addresses given with
``--forwarded-allow-ips`` (a proxy in front of the API); uvicorn's own default, which
believes them from loopback and ``FORWARDED_ALLOW_IPS``, would let any local client pick
an address per request and escape the limit.
"""

from __future__ import annotations

import argparse
import logging
import socket
from typing import TYPE_CHECKING

from settings.errors import UserError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes sharing the port, each with its own Cassandra session (default 1)")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--forwarded-allow-ips", metavar="IPS", default="",
                        help="comma-separated addresses of proxies in front of the API whose X-Forwarded-For "
                             "names the client (rate limits count that address); default none: "
                             "proxy headers are ignored and a client is the address it connects from")


def run(args: argparse.Namespace) -> int:
    from serving.limits import Limits
    from settings.environment import ServingKnobs, Settings

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    # Bad settings: one error here, not one per worker.
    Settings.from_env(), Limits.from_knobs(ServingKnobs.from_env())
    return serve(args, "serving.main:app_from_env", factory=True)


def server_config(app: str, args: argparse.Namespace, *, factory: bool) -> "uvicorn.Config":
    """uvicorn as ``viewcount serve`` runs it, for the ASGI app ``app`` ("module:name").

    The HTTP parser and the event loop are named, not left to uvicorn's "auto": httptools
    and uvloop cost a request less CPU than h11 and asyncio's own loop, and an install
    without them fails at start-up instead of serving slower."""
    import uvicorn

    proxies = [address.strip() for address in args.forwarded_allow_ips.split(",") if address.strip()]
    return uvicorn.Config(app, factory=factory, workers=args.workers, http="httptools", loop="uvloop",
                          access_log=args.access_log, log_level="info",
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None)


def serve(args: argparse.Namespace, app: str, *, factory: bool) -> int:
    """Serves ``app`` with ``server_config`` on ``--host``/``--port`` until stopped (the
    serving bench runs its bare route through here too, so both share every option)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    listening = _listen(args.host, args.port)
    config = server_config(app, args, factory=factory)
    server = uvicorn.Server(config)
    log.info(f"viewcount serve: listening on http://{args.host}:{listening.getsockname()[1]}"
             f" ({args.workers} worker{'s' if args.workers > 1 else ''})")
    try:
        if args.workers == 1:
            server.run(sockets=[listening])
            return 0 if server.started else 1
        Multiprocess(config, sockets=[listening]).run()
        return 0
    finally:
        listening.close()


def _listen(host: str, port: int) -> socket.socket:
    """Bound here rather than by uvicorn, so that a port in use is a one-line error."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(2048)
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return listening
