"""Start, stop and inspect the local real stack: Kafka, Cassandra and MinIO, one node of
each or (``stack up --nodes N``) N nodes each of Kafka and Cassandra.

``up`` is idempotent: servers already running (by our pid files) are left alone, missing
ones are started, then all are waited on together and the topics, the Cassandra schema
and the bucket are ensured. ``down`` stops only processes whose pid file we wrote and
whose command line names our run folder, so it never touches someone else's server.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from infra import artifacts
from infra.layout import require_same_layout
from infra.servers import CASSANDRA_DATACENTER, Server, all_servers, node_hosts, replicas_for
from storage.reachability import port_is_open, require_reachable
from settings.environment import STACK_FILE, Settings
from settings.errors import UserError

SPARK_SERVERS = ("spark-master", "spark-worker")  # started by `up --spark` only


log = logging.getLogger(__name__)


def running_pid(server: Server) -> int | None:
    """The pid from our pid file if that process is alive and is really ours."""
    try:
        pid = int(server.pid_path.read_text().strip())
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (OSError, ValueError, psutil.Error):  # no pid file, no such process, a zombie
        return None
    return pid if server.owns(cmdline) else None


START_BANNER = "=== viewcount stack up: starting"


def _tail(path: Path, lines: int = 8) -> str:
    """The last lines this start wrote (the log is appended across starts)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    this_run = text.rsplit(START_BANNER, 1)[-1].splitlines()[1:]
    return "\n".join(this_run[-lines:])


def _start(server: Server) -> subprocess.Popen:
    busy = [f"{host}:{port}" for host, port in server.ports() if port_is_open(host, port)]
    if busy:
        raise UserError(
            f"{server.name} cannot start: {', '.join(busy)} is already in use by another "
            f"process; stop that process or point viewcount at other ports (see README, "
            f"Configuration)"
        )
    server.prepare()
    cmd, extra_env = server.command()
    server.home.mkdir(parents=True, exist_ok=True)
    with server.log_path.open("ab") as log:
        log.write(f"{START_BANNER} {time.strftime('%Y-%m-%dT%H:%M:%S%z')} ===\n".encode())
        log.flush()
        process = subprocess.Popen(
            cmd, cwd=server.home, env={**os.environ, **extra_env}, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server.pid_path.write_text(f"{process.pid}\n")
    return process


def _exited(server: Server, process: subprocess.Popen | None) -> bool:
    # A process we just started is watched through its handle: until it has exec'd, its
    # command line is still ours and would not carry the server's marker.
    if process is not None:
        return process.poll() is not None
    return running_pid(server) is None


def start_servers(servers: list[Server]) -> None:
    """Start those of ``servers`` not running yet (by their pid files), each once it may (at
    once for most; a joining node once its seed listens), and wait until all are healthy."""
    width = max([10, *(len(server.name) for server in servers)])
    pending, to_start = {}, []
    for server in servers:
        pid = running_pid(server)
        if pid is None:
            to_start.append(server)
            continue
        log.info(f"  {server.name:<{width}} already running (pid {pid})")
        pending[server.name] = (server, None, time.monotonic())
    asked_at = time.monotonic()

    def still_waiting() -> bool:
        """One look at every server: start those that may start, drop the healthy ones, raise
        on one that exited or ran out of time (each has its own ``start_timeout``)."""
        for server in list(to_start):
            if server.may_start():
                to_start.remove(server)
                pending[server.name] = (server, _start(server), time.monotonic())
                log.info(f"  {server.name:<{width}} starting, log {server.log_path}")
            elif time.monotonic() - asked_at > server.start_timeout:
                raise UserError(f"{server.name} could not start: what it joins did not come up "
                                f"within {server.start_timeout:.0f} s")
        for name, (server, process, started) in list(pending.items()):
            waited = time.monotonic() - started
            if server.is_healthy():
                pid = process.pid if process else running_pid(server)
                log.info(f"  {name:<{width}} healthy after {waited:5.1f} s (pid {pid})")
                del pending[name]
            elif _exited(server, process):
                raise UserError(
                    f"{name} exited during startup; last log lines:\n{_tail(server.log_path)}\n"
                    f"(full log: {server.log_path})"
                )
            elif waited > server.start_timeout:
                raise UserError(
                    f"{name} did not become healthy within {server.start_timeout:.0f} s; "
                    f"see {server.log_path}"
                )
        return bool(pending or to_start)

    Retrying(retry=retry_if_result(bool), wait=wait_fixed(0.5))(still_waiting)


def _started_servers(settings: Settings) -> list[Server]:
    """The stack's servers, and the Spark ones when they were started (`up --spark`)."""
    return [server for server in all_servers(settings, spark=True)
            if server.name not in SPARK_SERVERS or running_pid(server) is not None]


def up(settings: Settings, *, spark: bool = False) -> None:
    began = time.monotonic()
    require_same_layout(settings, settings.stack_nodes)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    artifacts.ensure_all(settings)
    start_servers(all_servers(settings, spark=spark))
    _ensure_resources(settings)
    log.info(f"stack up in {time.monotonic() - began:.1f} s")


def set_nodes(settings: Settings, nodes: int) -> bool:
    """Make the run folder's stack one of ``nodes`` nodes each of Kafka and Cassandra
    (``stack.env``; none for one node). Returns whether the layout changed; refuses while
    servers of the other layout run, or while the run folder holds data another node count
    wrote. The caller reads its settings again after a change."""
    require_same_layout(settings, nodes)
    if nodes == settings.stack_nodes:
        return False
    running = [entry.name for entry in status(settings) if entry.pid is not None]
    if running:
        raise UserError(f"the stack in {settings.run_dir} runs with {settings.stack_nodes} node(s) "
                        f"({', '.join(running)}); stop it first (viewcount stack down)")
    path = settings.run_dir / STACK_FILE
    if nodes == 1:
        path.unlink(missing_ok=True)
        return True
    replicas, min_insync = replicas_for(nodes)
    kafka_port = settings.kafka_address[1]
    kafka = node_hosts([host for host, _ in settings.kafka_addresses[:1]], nodes)
    cassandra = node_hosts(settings.cassandra_hosts[:1], nodes)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Written by `viewcount stack up --nodes {nodes}`: where the nodes of this run folder's\n"
        "# stack listen and how data is replicated across them. Variables set in the environment\n"
        "# win over these; `viewcount stack up --nodes 1` removes this file.\n"
        f"VIEWCOUNT_STACK_NODES={nodes}\n"
        f"VIEWCOUNT_KAFKA_BOOTSTRAP={','.join(f'{host}:{kafka_port}' for host in kafka)}\n"
        f"VIEWCOUNT_CASSANDRA_HOSTS={','.join(cassandra)}\n"
        f"VIEWCOUNT_CASSANDRA_REPLICATION={{'class': 'NetworkTopologyStrategy', '{CASSANDRA_DATACENTER}': {replicas}}}\n"
        f"VIEWCOUNT_TOPIC_REPLICATION_FACTOR={replicas}\n"
        f"VIEWCOUNT_TOPIC_MIN_INSYNC_REPLICAS={min_insync}\n"
    )
    return True


def init(settings: Settings) -> None:
    """Topics, schema and bucket on servers that someone else runs (Docker, a cluster)."""
    require_reachable(settings, "kafka", "cassandra", "s3")
    _ensure_resources(settings)


def _ensure_resources(settings: Settings) -> None:
    from storage.cassandra import apply_migrations
    from storage.s3 import ensure_bucket
    from storage.topics import ensure_topics

    created = ensure_topics(settings)
    log.info(f"  topics     {'created ' + ', '.join(created) if created else 'present'}")
    applied = apply_migrations(settings)
    log.info(f"  schema     {'applied ' + ', '.join(applied) if applied else 'up to date'}")
    log.info(f"  bucket     {'created' if ensure_bucket(settings) else 'present'} "
             f"s3://{settings.s3_bucket}")


def down(settings: Settings, *, timeout: float = 60.0, only: str | None = None) -> None:
    """Stop the servers ``up`` started (or just the one named ``only``, for maintenance or
    an outage drill: ``up`` starts it again and leaves the others running)."""
    servers = [server for server in all_servers(settings, spark=True)
               if (only is None or server.name == only)
               # Spark's, never started: nothing to say
               and not (server.name in SPARK_SERVERS and only is None and running_pid(server) is None)]
    stop_servers(servers, timeout=timeout)


def stop_servers(servers: list[Server], *, timeout: float = 60.0) -> None:
    """SIGTERM the process group of each server that runs (by its pid file and marker),
    wait up to ``timeout`` for them all, then SIGKILL what is left."""
    width = max([10, *(len(server.name) for server in servers)])
    stopping = {}
    for server in servers:
        pid = running_pid(server)
        if pid is None:
            log.info(f"  {server.name:<{width}} not running")
            server.pid_path.unlink(missing_ok=True)
            continue
        os.killpg(pid, signal.SIGTERM)
        stopping[server.name] = (server, pid)

    def still_stopping() -> bool:
        for name, (server, pid) in list(stopping.items()):
            if running_pid(server) is None or is_zombie(pid):
                log.info(f"  {name:<{width}} stopped")
                server.pid_path.unlink(missing_ok=True)
                del stopping[name]
        return bool(stopping)

    # Out of time, the loop ends without an error: what is left is killed below.
    Retrying(retry=retry_if_result(bool), stop=stop_after_delay(timeout), wait=wait_fixed(0.3),
             retry_error_callback=lambda state: True)(still_stopping)
    for name, (server, pid) in stopping.items():
        os.killpg(pid, signal.SIGKILL)
        server.pid_path.unlink(missing_ok=True)
        log.warning(f"  {name:<{width}} killed after {timeout:.0f} s")


def is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


@dataclass
class ServerStatus:
    name: str
    pid: int | None
    address: str
    healthy: bool
    log_path: Path

    @property
    def state(self) -> str:
        if self.pid is None:
            return "down"
        return "healthy" if self.healthy else "unhealthy"


def status(settings: Settings) -> list[ServerStatus]:
    result = []
    for server in _started_servers(settings):
        pid = running_pid(server)
        healthy = pid is not None and server.is_healthy()
        result.append(ServerStatus(server.name, pid, server.describe_port(), healthy,
                                   server.log_path))
    return result


def is_up(settings: Settings) -> bool:
    return all(entry.healthy for entry in status(settings))
