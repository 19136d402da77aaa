"""Where every server is, read once from the environment.

Defaults point at the local stack that ``viewcount stack up`` starts. S3 credentials come
from the standard AWS variables; when those are unset, the credentials the local stack
generated for its MinIO (``<run dir>/credentials.env``) are used, so nothing secret ever
lives in the repository.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_CASSANDRA_HOSTS = "127.0.0.1"
DEFAULT_S3_ENDPOINT = "http://127.0.0.1:9000"
DEFAULT_S3_BUCKET = "viewcount"
CREDENTIALS_FILE = "credentials.env"

# Must equal the pyspark version in requirements.lock: the Kafka connector is built
# against Spark's internals (Maven Central has no connector for Spark 4.3.x).
SPARK_VERSION = "4.2.0"
# The Hadoop client bundled inside pyspark 4.2.0; hadoop-aws must match it exactly.
HADOOP_VERSION = "3.5.0"


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def default_run_dir() -> Path:
    """Data, logs and pid files of the local stack."""
    return _path_from_env("VIEWCOUNT_HOME", Path.home() / ".local" / "state" / "viewcount")


def default_cache_dir() -> Path:
    """Downloaded artifacts (jars, the MinIO binary); shared by every checkout."""
    return _path_from_env("VIEWCOUNT_CACHE", Path.home() / ".cache" / "viewcount")


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    pairs = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            pairs[name.strip()] = value.strip()
    return pairs


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    cassandra_hosts: tuple[str, ...] = (DEFAULT_CASSANDRA_HOSTS,)
    cassandra_port: int = 9042
    keyspace: str = "viewcount"
    s3_endpoint: str = DEFAULT_S3_ENDPOINT
    s3_bucket: str = DEFAULT_S3_BUCKET
    s3_region: str = "us-east-1"
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    views_topic: str = "views"
    dlq_topic: str = "views.dlq"
    run_dir: Path = field(default_factory=default_run_dir)
    cache_dir: Path = field(default_factory=default_cache_dir)

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        run_dir = default_run_dir()
        generated = _read_env_file(run_dir / CREDENTIALS_FILE)
        hosts = env.get("VIEWCOUNT_CASSANDRA_HOSTS", DEFAULT_CASSANDRA_HOSTS)
        return cls(
            kafka_bootstrap=env.get("VIEWCOUNT_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP),
            cassandra_hosts=tuple(h.strip() for h in hosts.split(",") if h.strip()),
            cassandra_port=int(env.get("VIEWCOUNT_CASSANDRA_PORT", "9042")),
            keyspace=env.get("VIEWCOUNT_KEYSPACE", "viewcount"),
            s3_endpoint=env.get("VIEWCOUNT_S3_ENDPOINT", DEFAULT_S3_ENDPOINT),
            s3_bucket=env.get("VIEWCOUNT_S3_BUCKET", DEFAULT_S3_BUCKET),
            s3_region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or generated.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=(
                env.get("AWS_SECRET_ACCESS_KEY") or generated.get("AWS_SECRET_ACCESS_KEY")
            ),
            views_topic=env.get("VIEWCOUNT_VIEWS_TOPIC", "views"),
            dlq_topic=env.get("VIEWCOUNT_DLQ_TOPIC", "views.dlq"),
            run_dir=run_dir,
            cache_dir=default_cache_dir(),
        )

    @property
    def spark_connectors_home(self) -> Path:
        """Where the Kafka and S3A connector jars are cached (filled by ``stack up``)."""
        return self.cache_dir / f"spark-connectors-{SPARK_VERSION}-hadoop{HADOOP_VERSION}"

    @property
    def kafka_address(self) -> tuple[str, int]:
        first = self.kafka_bootstrap.split(",")[0].strip()
        return _host_port(first, 9092)

    @property
    def s3_address(self) -> tuple[str, int]:
        without_scheme = self.s3_endpoint.split("://", 1)[-1].rstrip("/")
        return _host_port(without_scheme, 443 if self.s3_endpoint.startswith("https") else 80)
