"""Is a server there at all? A TCP connect, before a command pays for a JVM or a driver.

A command that needs Kafka, Cassandra or S3 checks first that something listens at each
address, so that a stack that is not running gets one clear line at once instead of a
driver's retries and a Spark job's restarts.
"""

from __future__ import annotations

import socket

from settings.errors import UserError
from storage.errors import START_STACK
from settings.environment import Settings

VARIABLES = {"kafka": "VIEWCOUNT_KAFKA_BOOTSTRAP", "cassandra": "VIEWCOUNT_CASSANDRA_HOSTS",
             "s3": "VIEWCOUNT_S3_ENDPOINT"}
NAMES = {"kafka": "Kafka", "cassandra": "Cassandra", "s3": "S3"}


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def addresses(settings: Settings, server: str) -> list[tuple[str, int]]:
    """Every address a client of `server` may use (any one answering is enough)."""
    if server == "kafka":
        return settings.kafka_addresses
    if server == "cassandra":
        return [(host, settings.cassandra_port) for host in settings.cassandra_hosts]
    return [settings.s3_address]


def unreachable(settings: Settings, *servers: str, timeout: float = 3.0) -> list[str]:
    """Each server of `servers` ("kafka", "cassandra", "s3") that nothing answers for, named
    with its addresses and the variable that sets them."""
    missing = []
    for server in servers:
        where = addresses(settings, server)
        if not any(port_is_open(host, port, timeout) for host, port in where):
            missing.append(f"{NAMES[server]} at {','.join(f'{h}:{p}' for h, p in where)} "
                           f"(set {VARIABLES[server]})")
    return missing


def require_reachable(settings: Settings, *servers: str, timeout: float = 3.0) -> None:
    """UserError naming each server of `servers` that nothing answers for, and what to do."""
    missing = unreachable(settings, *servers, timeout=timeout)
    if missing:
        raise UserError(f"not reachable: {'; '.join(missing)}: {START_STACK}, or point the variables "
                        "at running servers")
