"""Errors a user can fix: the CLI prints their message on one line and exits non-zero.

Two kinds: ``UserError`` (``settings.errors``), raised by our own code when an input or the
environment is wrong, and the operational failures the drivers raise (a server down, credentials missing or
refused, a full disk, a port taken), which ``explain`` turns into one line that says what
happened and what to do. Anything else is a defect and keeps its traceback.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settings.environment import Settings


START_STACK = "start the local stack with `viewcount stack up`"


def _chain(error: BaseException):
    """The error, then its causes and contexts (a driver error is often wrapped)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _kind(error: BaseException) -> str:
    return f"{type(error).__module__}.{type(error).__qualname__}"


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = str(error).strip().splitlines()
    return (text[0][:limit] if text else type(error).__name__)


def _cassandra(error: BaseException, settings: "Settings") -> str | None:
    if _kind(error) in ("cassandra.cluster.NoHostAvailable", "cassandra.OperationTimedOut",
                        "cassandra.cluster.UnresolvableContactPoints"):
        where = ",".join(settings.cassandra_hosts) + f":{settings.cassandra_port}"
        if "AuthenticationFailed" in str(error):
            return (f"Cassandra at {where} refused the credentials: check VIEWCOUNT_CASSANDRA_USERNAME "
                    "and VIEWCOUNT_CASSANDRA_PASSWORD")
        if "using keyspace" in str(error):  # it answered, but set_keyspace failed: no such keyspace
            return (f"Cassandra at {where} has no keyspace {settings.keyspace!r} yet: `viewcount stack up` "
                    "(`viewcount stack init` on servers of your own) creates it, or set VIEWCOUNT_KEYSPACE")
        return f"Cassandra is not reachable at {where}: {START_STACK} or set VIEWCOUNT_CASSANDRA_HOSTS"
    return None


def kafka_unreachable(bootstrap: str) -> str:
    return f"Kafka is not reachable at {bootstrap}: {START_STACK} or set VIEWCOUNT_KAFKA_BOOTSTRAP"


def _kafka(error: BaseException, settings: "Settings") -> str | None:
    kind = _kind(error)
    if kind in ("cimpl.KafkaException", "confluent_kafka.KafkaException"):
        from storage.topics import broker_down

        if broker_down(error):
            return kafka_unreachable(settings.kafka_bootstrap)
        code = error.args[0].name() if error.args and hasattr(error.args[0], "name") else ""
        if code in ("_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED", "_SSL"):
            return (f"Kafka at {settings.kafka_bootstrap} refused the connection's credentials or TLS: "
                    "check the VIEWCOUNT_KAFKA_SECURITY_PROTOCOL, _SASL_* and _SSL_* variables")
    return None


S3_REFUSED_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken")


def _s3(error: BaseException, settings: "Settings") -> str | None:
    kind = _kind(error)
    if kind in ("botocore.exceptions.EndpointConnectionError", "botocore.exceptions.ConnectTimeoutError",
                "botocore.exceptions.ConnectionClosedError"):
        return f"S3 is not reachable at {settings.s3_endpoint}: {START_STACK} or set VIEWCOUNT_S3_ENDPOINT"
    if kind == "botocore.exceptions.ClientError":
        code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
        if code in S3_REFUSED_CODES:
            return (f"S3 at {settings.s3_endpoint} refused the credentials ({code}): check "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return None


def _system(error: BaseException, settings: "Settings") -> str | None:
    if not isinstance(error, OSError):
        return None
    where = f" ({error.filename})" if getattr(error, "filename", None) else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full{where}: free some space and run again ({_first_line(error)})"
    if error.errno == errno.EADDRINUSE:
        return f"the address is already in use{where}: stop what listens there or choose another port"
    if error.errno in (errno.EACCES, errno.EROFS):
        return f"permission denied{where}: {_first_line(error)}"
    if isinstance(error, ConnectionRefusedError):
        return f"a server refused the connection ({_first_line(error)}): {START_STACK}"
    return None


EXPLAINERS = (_cassandra, _kafka, _s3, _system)


def explain(error: BaseException, settings: "Settings") -> str | None:
    """One line for an operational failure anywhere in the error's chain; None for a defect."""
    for link in _chain(error):
        for explainer in EXPLAINERS:
            line = explainer(link, settings)
            if line:
                return line
    return None
