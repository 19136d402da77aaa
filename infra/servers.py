"""The three servers of the local stack, as native processes on loopback, and on request
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
from storage.settings import CREDENTIALS_FILE, Settings
from storage.errors import UserError
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

    def ports(self) -> list[tuple[str, int]]:
        raise NotImplementedError

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


class Kafka(Server):
    def __init__(self, settings: Settings):
        super().__init__("kafka", settings, start_timeout=90.0)
        self.host, self.port = settings.kafka_address

    @property
    def controller_port(self) -> int:
        return self.port + 1

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), (self.host, self.controller_port)]

    def prepare(self) -> None:
        data_dir = self.home / "data"
        properties = render(
            "kafka-server.properties", self.home / "server.properties",
            host=self.host, port=self.port, controller_port=self.controller_port,
            data_dir=data_dir,
        )
        render("kafka-log4j2.properties", self.home / "log4j2.properties")
        if (data_dir / "meta.properties").is_file():
            return
        classpath = artifacts.KAFKA.classpath(self.settings.cache_dir)
        cluster_id = subprocess.run(
            [_java(), "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        formatted = subprocess.run(
            [_java(), "-cp", classpath, "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(properties)],
            capture_output=True, text=True, check=False,
        )
        if formatted.returncode != 0:
            raise UserError(f"formatting Kafka storage in {data_dir} failed: "
                            f"{formatted.stderr.strip().splitlines()[-1:]}")

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [
            _java(), "-Xms512m", "-Xmx1g", "-XX:+UseG1GC",
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
        return bool(metadata.brokers)


class Cassandra(Server):
    def __init__(self, settings: Settings):
        super().__init__("cassandra", settings, start_timeout=180.0)
        self.host = settings.cassandra_hosts[0]
        self.port = settings.cassandra_port
        self.storage_port = 7000 + (self.port - 9042)

    def ports(self) -> list[tuple[str, int]]:
        return [(self.host, self.port), (self.host, self.storage_port)]

    def prepare(self) -> None:
        conf = self.home / "conf"
        render("cassandra.yaml", conf / "cassandra.yaml", host=self.host, port=self.port,
               storage_port=self.storage_port, data_dir=self.home / "data")
        render("cassandra-logback.xml", conf / "logback.xml")
        (self.home / "logs").mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        conf = self.home / "conf"
        jvm_options = [
            line.strip() for line in (CONF_DIR / "cassandra-jvm17.options").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        classpath = f"{conf}:{artifacts.CASSANDRA.classpath(self.settings.cache_dir)}"
        return [
            _java(), "-Xms1g", "-Xmx1g", *jvm_options,
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

        return ping(self.settings)


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
    into place, which fails for the one that comes second."""
    path = settings.run_dir / CREDENTIALS_FILE
    if settings.s3_credentials_given or path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    draft.write_text(
        "# Generated by `viewcount stack up` for the local MinIO; not used when\n"
        "# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are set.\n"
        f"AWS_ACCESS_KEY_ID=viewcount-{secrets.token_hex(4)}\n"
        f"AWS_SECRET_ACCESS_KEY={secrets.token_urlsafe(24)}\n"
    )
    draft.chmod(0o600)
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another stack up wrote them first: theirs are the ones
    finally:
        draft.unlink()


def all_servers(settings: Settings, *, spark: bool = False) -> list[Server]:
    """The stack's servers; with ``spark``, a standalone Spark master and worker too."""
    servers = [Kafka(settings), Cassandra(settings), MinIO(settings)]
    return servers + [SparkMaster(settings), SparkWorker(settings)] if spark else servers
