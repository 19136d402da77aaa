"""Cassandra connections and schema migrations.

Migrations are versioned CQL files (``storage/migrations/NNNN_name.cql``) applied in order
and recorded in ``schema_migrations``; applying them again is a no-op, and a file that was
edited after it was applied is refused rather than silently diverging.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from settings.environment import Settings

if TYPE_CHECKING:
    from cassandra.cluster import Cluster, Session

RELEASE_READ = "SELECT release_version FROM system.local"  # answers on any node, keyspace or not
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.cql$")


class MigrationError(RuntimeError):
    pass


def build_cluster(settings: Settings, *, connect_timeout: float = 5.0, only_host: str | None = None) -> "Cluster":
    """A driver cluster for ``settings``; with ``only_host``, one that talks to that node alone."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import (DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy,
                                    TokenAwarePolicy, WhiteListRoundRobinPolicy)

    profile = ExecutionProfile(
        load_balancing_policy=(WhiteListRoundRobinPolicy([only_host]) if only_host
                               else TokenAwarePolicy(DCAwareRoundRobinPolicy())),
        consistency_level=ConsistencyLevel.name_to_value[settings.cassandra.consistency],
        request_timeout=20.0,
    )
    return Cluster(
        contact_points=[only_host] if only_host else list(settings.cassandra_hosts),
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=connect_timeout,
        protocol_version=5,
        # After an outage a node is tried again within 10 s (the driver's default backs off
        # to 10 minutes), so long-running jobs and the API recover by themselves.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=1.0, max_delay=10.0),
        **security_options(settings),
    )


def security_options(settings: Settings) -> dict:
    """``Cluster`` arguments for password authentication and TLS; none for the local stack.

    With a CA the server's certificate must chain to it and name the address the driver
    connects to (the contact points, then the addresses nodes advertise)."""
    options = {}
    if settings.cassandra_username:
        from cassandra.auth import PlainTextAuthProvider

        options["auth_provider"] = PlainTextAuthProvider(
            username=settings.cassandra_username, password=settings.cassandra_password)
    if settings.cassandra_ssl_ca:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
        context.load_verify_locations(cafile=settings.cassandra_ssl_ca)
        options["ssl_context"] = context
    return options


def connect(settings: Settings, *, keyspace: bool = True) -> "Session":
    cluster = build_cluster(settings)
    return cluster.connect(settings.keyspace if keyspace else None)


def drop_keyspace(settings: Settings) -> None:
    """Drop the keyspace of ``settings`` and every table in it (a run of its own: the demo,
    a test module, a benchmark); a keyspace that does not exist is fine."""
    session = connect(settings, keyspace=False)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {settings.keyspace}", timeout=120)
    finally:
        session.cluster.shutdown()


_process_sessions: dict[tuple, "Session"] = {}


def cached_session(settings: Settings) -> "Session":
    """One session per (cluster, keyspace) per process, reused by every caller in it
    (Spark reuses its Python workers, so executors keep theirs across tasks)."""
    key = (settings.cassandra_hosts, settings.cassandra_port, settings.keyspace)
    session = _process_sessions.get(key)
    if session is None or session.is_shutdown:
        session = _process_sessions[key] = connect(settings)
    return session


def ping(settings: Settings, host: str | None = None) -> bool:
    """True when a CQL query answers (from ``host`` alone, when given); quiet on failure
    (used while waiting for startup)."""
    driver_log = logging.getLogger("cassandra")
    previous = driver_log.level
    driver_log.setLevel(logging.CRITICAL)
    cluster = build_cluster(settings, connect_timeout=2.0, only_host=host)
    try:
        session = cluster.connect()
        session.execute(RELEASE_READ, timeout=3)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    finally:
        cluster.shutdown()
        driver_log.setLevel(previous)


def _statements(cql: str) -> list[str]:
    without_comments = "\n".join(
        line for line in cql.splitlines() if not line.lstrip().startswith("--")
    )
    return [part.strip() for part in without_comments.split(";") if part.strip()]


def migration_files() -> list[Path]:
    files = sorted(MIGRATIONS_DIR.glob("*.cql"))
    for path in files:
        if not MIGRATION_NAME.match(path.name):
            raise MigrationError(f"migration file name {path.name!r} is not NNNN_name.cql")
    return files


SCHEMA_AGREEMENT_S = 120.0


def _agreed(session: "Session", result) -> None:
    """Return once every live node has the schema change ``result`` made (the driver waits
    10 s by itself; nodes that joined a moment ago on a busy machine may take longer), so
    the next statement, sent to any node, finds it."""
    deadline = time.monotonic() + SCHEMA_AGREEMENT_S
    agreed = result.response_future.is_schema_agreed
    while not agreed:
        if time.monotonic() > deadline:
            raise MigrationError(f"the Cassandra nodes did not agree on the schema within {SCHEMA_AGREEMENT_S:.0f} s; "
                                 "check that every node is up and sees the others")
        agreed = session.cluster.control_connection.wait_for_schema_agreement(wait_time=10)


def apply_migrations(settings: Settings) -> list[str]:
    """Apply every migration not applied yet; returns the names applied now."""
    replication = settings.cassandra.replication
    cluster = build_cluster(settings)
    try:
        session = cluster.connect()
        _agreed(session, session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {settings.keyspace} WITH replication = {replication}"
        ))
        session.set_keyspace(settings.keyspace)
        _agreed(session, session.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version int PRIMARY KEY, name text, checksum text, applied_at timestamp)"
        ))
        applied = {row.version: row for row in session.execute(
            "SELECT version, name, checksum FROM schema_migrations")}
        newly_applied = []
        for path in migration_files():
            version = int(path.name[:4])
            text = path.read_text()
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in applied:
                if applied[version].checksum != checksum:
                    raise MigrationError(
                        f"{path.name} changed after it was applied; add a new migration instead"
                    )
                continue
            for statement in _statements(text.replace("{keyspace}", settings.keyspace)):
                _agreed(session, session.execute(statement, timeout=60))
            session.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                " VALUES (%s, %s, %s, toTimestamp(now()))",
                (version, path.name, checksum),
            )
            newly_applied.append(path.name)
        return newly_applied
    finally:
        cluster.shutdown()


def applied_migrations(session: "Session") -> list[str]:
    """The file names of the migrations applied to the session's keyspace."""
    return [row.name for row in session.execute("SELECT name FROM schema_migrations")]


def pending_hint_files(session: "Session") -> int:
    """How many hint files the coordinator the session talks to holds for nodes that were down."""
    return sum(row.files for row in session.execute("SELECT files FROM system_views.pending_hints"))
