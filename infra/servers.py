"""The servers of the local stack, as native processes on loopback: Kafka, Cassandra and
MinIO (with `stack up --nodes N`, N nodes each of Kafka and Cassandra), and on request
(`stack up --spark`) a Spark standalone master and worker.

Each server knows how to render its configuration into the run folder, the command that
starts it, the ports it needs, and how to tell that it is healthy. Starting, stopping and
waiting is done by ``infra.stack`` for all of them alike.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from string import Template

from infra import artifacts
from settings.environment import CREDENTIALS_FILE, Settings
from settings.errors import UserError
from storage.reachability import port_is_open

CONF_DIR = Path(__file__).resolve().parent / "conf"


def render(template_name: str, target: Path, **values: object) -> Path:
    text = Template((CONF_DIR / template_name).read_text()).substitute(
        {key: str(value) for key, value in values.items()}
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


@dataclass
class Server:
    """What ``infra.stack`` needs to know to run one server."""

    name: str
    settings: Settings
    start_timeout: float = 60.0

    @property
    def home(self) -> Path:
        return self.settings.run_dir / self.name

    @property
    def log_path(self) -> Path:
        return self.home / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def marker(self) -> str:
        """A string in the process's command line that proves the pid is ours."""
        return str(self.home)

    def owns(self, cmdline: str) -> bool:
        """Whether a process with this command line is this server."""
        return self.marker in cmdline

    def ports(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def may_start(self) -> bool:
        """Whether what this server needs from the others is there yet (a joining node's seed)."""
        return True

    def prepare(self) -> None:
        """Render configuration and do one-time initialisation; safe to repeat."""

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def is_healthy(self) -> bool:
        raise NotImplementedError

    def describe_port(self) -> str:
        host, port = self.ports()[0]
        return f"{host}:{port}"


def _java() -> str:
    return artifacts.require_tool(
        "java", "install a Java 17 runtime (apt-get install -y openjdk-17-jre-headless)"
    )


def node_hosts(given: tuple[str, ...] | list[str], nodes: int) -> list[str]:
    """The address of each of ``nodes`` local nodes: the ones given when there are enough
    (a stack.env lists them all), else consecutive loopback addresses from the first
    given (127.0.0.1 -> 127.0.0.1, 127.0.0.2, 127.0.0.3)."""
    if len(given) >= nodes:
        return list(given[:nodes])
    first = given[0]
    parts = first.split(".")
    if nodes > 1 and not (len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)
                          and int(parts[3]) + nodes - 1 <= 254):
        raise UserError(f"a local stack of {nodes} nodes needs a loopback IPv4 address with room for "
                        f"{nodes} consecutive addresses after it, got {first!r}")
    return [".".join(parts[:3] + [str(int(parts[3]) + i)]) for i in range(nodes)] if nodes > 1 else [first]


def replicas_for(nodes: int) -> tuple[int, int]:
    """(replication factor, writes that must succeed) of a local stack of ``nodes`` nodes."""
    replicas = min(nodes, 3)
    return replicas, max(1, replicas - 1)


class Kafka(Server):
    """A Kafka node (broker and KRaft controller): the stack's only one, or node ``node``
    of ``nodes``, each on its own loopback address with the same ports."""

    def __init__(self, settings: Settings, node: int = 1):
        nodes = settings.stack_nodes
        super().__init__("kafka" if nodes == 1 else f"kafka-{node}", settings, start_timeout=90.0)
        self.node, self.nodes = node, nodes
        port = settings.kafka_address[1]
        given = [host for host, _ in settings.kafka_addresses]
        self.hosts = node_hosts(given, nodes)
        self.host, self.port = self.hosts[node - 1], port

    @property
    def controller_port(self) -> int:
        return self.port + 1

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), (self.host, self.controller_port)]

    def _cluster_id(self, classpath: str) -> str:
        """One id for every node of the stack, made once and kept in the run folder."""
        path = self.settings.run_dir / "kafka-cluster-id"
        if path.is_file():
            return path.read_text().strip()
        cluster_id = subprocess.run(
            [_java(), "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        path.write_text(f"{cluster_id}\n")
        return cluster_id

    def prepare(self) -> None:
        data_dir = self.home / "data"
        replicas, min_isr = replicas_for(self.nodes)
        properties = render(
            "kafka-server.properties", self.home / "server.properties",
            node_id=self.node, host=self.host, port=self.port, controller_port=self.controller_port,
            voters=",".join(f"{i}@{host}:{self.controller_port}" for i, host in enumerate(self.hosts, 1)),
            replicas=replicas, min_isr=min_isr, data_dir=data_dir,
        )
        render("kafka-log4j2.properties", self.home / "log4j2.properties")
        if (data_dir / "meta.properties").is_file():
            return
        classpath = artifacts.KAFKA.classpath(self.settings.cache_dir)
        formatted = subprocess.run(
            [_java(), "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", self._cluster_id(classpath), "-c", str(properties)],
            capture_output=True, text=True, check=False,
        )
        if formatted.returncode != 0:
            raise UserError(f"formatting Kafka storage in {data_dir} failed: "
                            f"{formatted.stderr.strip().splitlines()[-1:]}")

    def command(self) -> tuple[list[str], dict[str, str]]:
        heap = "-Xmx1g" if self.nodes == 1 else "-Xmx512m"
        return [
            _java(), "-Xms512m", heap, "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp", artifacts.KAFKA.classpath(self.settings.cache_dir),
            "kafka.Kafka", str(self.home / "server.properties"),
        ], {}

    def is_healthy(self) -> bool:
        if not port_is_open(self.host, self.port):
            return False
        from confluent_kafka.admin import AdminClient

        try:
            metadata = AdminClient({"bootstrap.servers": f"{self.host}:{self.port}"}).list_topics(
                timeout=3
            )
        except Exception:  # noqa: BLE001 - any failure here just means "not ready yet"
            return False
        return any(broker.id == self.node for broker in metadata.brokers.values())


# Token ranges of a multi-node stack: each node's tokens are fixed (initial_token) and
# interleaved evenly around the ring, so nodes may join at once without choosing the same
# tokens, and each owns the same share.
CASSANDRA_TOKENS_PER_NODE = 4
CASSANDRA_DATACENTER = "datacenter1"  # SimpleSnitch puts every node there


def cassandra_tokens(node: int, nodes: int) -> list[int]:
    """The Murmur3 tokens of node ``node`` (1-based) of ``nodes``."""
    step = 2**64 // (nodes * CASSANDRA_TOKENS_PER_NODE)
    return [-(2**63) + (node - 1 + nodes * k) * step for k in range(CASSANDRA_TOKENS_PER_NODE)]


class Cassandra(Server):
    """A Cassandra node: the stack's only one, or node ``node`` of ``nodes``, each on its
    own loopback address with the same ports; the first is the seed the others join."""

    def __init__(self, settings: Settings, node: int = 1):
        nodes = settings.stack_nodes
        super().__init__("cassandra" if nodes == 1 else f"cassandra-{node}", settings, start_timeout=180.0)
        self.node, self.nodes = node, nodes
        self.hosts = node_hosts(settings.cassandra_hosts, nodes)
        self.host = self.hosts[node - 1]
        self.port = settings.cassandra_port
        self.storage_port = 7000 + (self.port - 9042)

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), (self.host, self.storage_port)]

    def may_start(self) -> bool:
        """A joining node starts once the seed listens for gossip."""
        return self.node == 1 or port_is_open(self.hosts[0], self.storage_port)

    def prepare(self) -> None:
        conf = self.home / "conf"
        if self.nodes == 1:
            placement = "allocate_tokens_for_local_replication_factor: 1"
        else:  # a new, empty cluster: nothing to stream when a node joins
            tokens = ",".join(str(token) for token in cassandra_tokens(self.node, self.nodes))
            placement = f"initial_token: {tokens}\nauto_bootstrap: false"
        render("cassandra.yaml", conf / "cassandra.yaml", host=self.host, port=self.port, seed=self.hosts[0],
               storage_port=self.storage_port, token_placement=placement, data_dir=self.home / "data")
        render("cassandra-logback.xml", conf / "logback.xml")
        (self.home / "logs").mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        conf = self.home / "conf"
        jvm_options = [
            line.strip() for line in (CONF_DIR / "cassandra-jvm17.options").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        heap = "1g" if self.nodes == 1 else "768m"
        classpath = f"{conf}:{artifacts.CASSANDRA.classpath(self.settings.cache_dir)}"
        return [
            _java(), f"-Xms{heap}", f"-Xmx{heap}", *jvm_options,
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dcassandra.storagedir={self.home / 'data'}",
            f"-Dcassandra.logdir={self.home / 'logs'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            "-Dcassandra-foreground=yes",
            "-cp", classpath, "org.apache.cassandra.service.CassandraDaemon",
        ], {}

    def is_healthy(self) -> bool:
        if not port_is_open(self.host, self.port):
            return False
        from storage.cassandra import ping

        return ping(self.settings, host=self.host)


class MinIO(Server):
    def __init__(self, settings: Settings):
        super().__init__("minio", settings, start_timeout=60.0)
        self.host, self.port = settings.s3_address

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), (self.host, self.port + 1)]

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        ensure_local_credentials(self.settings)

    def command(self) -> tuple[list[str], dict[str, str]]:
        access_key, secret_key = self.settings.s3_credentials()  # prepare() may have just made them
        binary = artifacts.MINIO.path(self.settings.cache_dir)
        return [
            str(binary), "server", str(self.home / "data"),
            "--address", f"{self.host}:{self.port}",
            "--console-address", f"{self.host}:{self.port + 1}",
        ], {
            "MINIO_ROOT_USER": access_key or "",
            "MINIO_ROOT_PASSWORD": secret_key or "",
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }

    def is_healthy(self) -> bool:
        url = f"http://{self.host}:{self.port}/minio/health/live"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


SPARK_MASTER_PORT = 7077
SPARK_MASTER_UI_PORT = 8090
SPARK_WORKER_PORT = 7078
SPARK_WORKER_UI_PORT = 8091
SPARK_WORKER_MEMORY = "4g"  # executors get spark.executor.memory (1 GiB by default) out of it


def spark_master_url(host: str = "127.0.0.1") -> str:
    """The standalone master `stack up --spark` starts, for ``--master`` / VIEWCOUNT_SPARK_MASTER."""
    return f"spark://{host}:{SPARK_MASTER_PORT}"


def _spark_class() -> str:
    import pyspark

    return str(Path(pyspark.__file__).resolve().parent / "bin" / "spark-class")


def _json(url: str) -> dict | None:
    import json

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


class SparkMaster(Server):
    """A Spark standalone master: real cluster scheduling on one machine, for jobs started
    with ``--master spark://127.0.0.1:7077``. Its web UI and RPC listen on loopback."""

    def __init__(self, settings: Settings):
        super().__init__("spark-master", settings, start_timeout=60.0)
        self.host = "127.0.0.1"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, SPARK_MASTER_PORT), (self.host, SPARK_MASTER_UI_PORT)]

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "spark-defaults.conf").write_text("# the standalone master of `viewcount stack up --spark`\n")

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [_spark_class(), "org.apache.spark.deploy.master.Master", "--host", self.host,
                "--port", str(SPARK_MASTER_PORT), "--webui-port", str(SPARK_MASTER_UI_PORT),
                "--properties-file", str(self.home / "spark-defaults.conf")], {"SPARK_LOCAL_IP": self.host}

    def is_healthy(self) -> bool:
        state = _json(f"http://{self.host}:{SPARK_MASTER_UI_PORT}/json/")
        return bool(state) and state.get("status") == "ALIVE"


class SparkWorker(Server):
    """A Spark standalone worker with every core of the machine, registered with ``SparkMaster``."""

    def __init__(self, settings: Settings):
        super().__init__("spark-worker", settings, start_timeout=60.0)
        self.host = "127.0.0.1"

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, SPARK_WORKER_PORT), (self.host, SPARK_WORKER_UI_PORT)]

    def prepare(self) -> None:
        (self.home / "work").mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [_spark_class(), "org.apache.spark.deploy.worker.Worker", "--host", self.host,
                "--port", str(SPARK_WORKER_PORT), "--webui-port", str(SPARK_WORKER_UI_PORT),
                "--cores", str(os.cpu_count() or 2), "--memory", SPARK_WORKER_MEMORY,
                "--work-dir", str(self.home / "work"), spark_master_url(self.host)], {"SPARK_LOCAL_IP": self.host}

    def is_healthy(self) -> bool:
        state = _json(f"http://{self.host}:{SPARK_MASTER_UI_PORT}/json/")
        return bool(state) and any(worker.get("port") == SPARK_WORKER_PORT and worker.get("state") == "ALIVE"
                                   for worker in state.get("workers", []))


def ensure_local_credentials(settings: Settings) -> None:
    """Give the local MinIO root credentials once, unless the user brought their own.

    Two `stack up` at once must not each write a pair (a MinIO started with the first pair
    would refuse the second): the file is written whole under another name, then linked
    into place, which fails for the one that comes second.

    The draft is created owner-only (os.open, mode 0600, O_EXCL) before the secret is
    written into it: written under the umask's mode and narrowed after, the root key would
    be readable by every user of the machine in between, and for good if the command were
    killed there."""
    path = settings.run_dir / CREDENTIALS_FILE
    if settings.s3_credentials_given or path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(
                "# Generated by `viewcount stack up` for the local MinIO; not used when\n"
                "# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are set.\n"
                f"AWS_ACCESS_KEY_ID=viewcount-{secrets.token_hex(4)}\n"
                f"AWS_SECRET_ACCESS_KEY={secrets.token_urlsafe(24)}\n"
            )
    except OSError:
        draft.unlink(missing_ok=True)  # a full disk: no half-written draft left behind
        raise
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another stack up wrote them first: theirs are the ones
    finally:
        draft.unlink()


def all_servers(settings: Settings, *, spark: bool = False) -> list[Server]:
    """The stack's servers; with ``spark``, a standalone Spark master and worker too."""
    nodes = range(1, settings.stack_nodes + 1)
    servers = [*(Kafka(settings, node) for node in nodes), *(Cassandra(settings, node) for node in nodes),
               MinIO(settings)]
    return servers + [SparkMaster(settings), SparkWorker(settings)] if spark else servers
