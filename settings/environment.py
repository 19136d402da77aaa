"""Where every server is, read once from the environment.

Defaults point at the local stack that ``viewcount stack up`` starts. S3 credentials come
from the standard AWS variables; when those are unset, the credentials the local stack
generated for its MinIO (``<run dir>/credentials.env``) are used, so nothing secret ever
lives in the repository. Those are read when a client is made, not when the settings are:
``stack up`` may generate them after a command has read its settings (a first run).

Production TLS and authentication (Kafka SASL/SSL, Cassandra password and TLS, an https S3
endpoint with its CA) are switched on by the ``VIEWCOUNT_KAFKA_*``, ``VIEWCOUNT_CASSANDRA_*``
and ``AWS_CA_BUNDLE`` variables (docs/security.md); their defaults keep the local stack's plaintext, unauthenticated connections. Secrets are kept
out of ``repr``.

``Settings`` and everything else the environment tunes (Spark, topics, Cassandra consistency
and replication, reconciliation, the API's limits, the DAG) are pydantic-settings classes
(``Settings`` first, the knobs at the end ``SparkKnobs`` ... ``DagKnobs``): typed, checked, a bad
value one ``UserError`` naming the variable. Each is read once, by ``from_env`` at an edge
(a command, a DAG task, the API's app factory) and handed down. This module is the only one
that reads the environment; docs/configuration.md lists every variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from settings.errors import UserError

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_CASSANDRA_HOSTS = "127.0.0.1"
DEFAULT_S3_ENDPOINT = "http://127.0.0.1:9000"
DEFAULT_S3_BUCKET = "viewcount"
CREDENTIALS_FILE = "credentials.env"
# Written by `viewcount stack up --nodes N` (N > 1): where the nodes are and how data is
# replicated across them. Its variables are defaults under the environment's own.
STACK_FILE = "stack.env"
MAX_STACK_NODES = 9
DEFAULT_RESTATEMENT_DAYS = 7

# Must equal the pyspark version in requirements.lock: the Kafka connector is built
# against Spark's internals (Maven Central has no connector for Spark 4.3.x).
SPARK_VERSION = "4.2.0"
# The Hadoop client bundled inside pyspark 4.2.0; hadoop-aws must match it exactly.
HADOOP_VERSION = "3.5.0"

KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


def default_run_dir() -> Path:
    """Data, logs and pid files of the local stack."""
    return _path_from_env("VIEWCOUNT_HOME", Path.home() / ".local" / "state" / "viewcount")


def default_cache_dir() -> Path:
    """Downloaded artifacts (jars, the MinIO binary); shared by every checkout."""
    return _path_from_env("VIEWCOUNT_CACHE", Path.home() / ".cache" / "viewcount")


def stack_layout(run_dir: Path) -> dict[str, str]:
    """The variables of the run folder's ``stack.env`` (none for a single-node stack)."""
    path = run_dir / STACK_FILE
    return {name: value or "" for name, value in dotenv_values(path).items()} if path.is_file() else {}


def stack_node_count(text: str) -> int:
    """A number of nodes each of Kafka and Cassandra for the local stack (``--nodes``,
    VIEWCOUNT_STACK_NODES); ValueError saying what it must be."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_STACK_NODES:
        raise ValueError(f"a number of nodes from 1 to {MAX_STACK_NODES}, got {text!r}")
    return int(text)


def launched_by_spark_submit() -> bool:
    """True in a Python driver that spark-submit started (its --master then decides)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host, int(port)


def _stripped_or_none(value):
    """An unset, empty or blank value is None; others lose surrounding blanks."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _a_path(value):
    value = _stripped_or_none(value)
    return str(Path(value).expanduser()) if isinstance(value, str) else value


class _FromEnvironment(BaseSettings):
    """Read from the environment when made (``from_env`` at the edges; ``defaults`` reads
    nothing), then frozen and passed around as a value. A bad value is one ``UserError``
    naming its variable."""

    model_config = SettingsConfigDict(env_prefix="VIEWCOUNT_", frozen=True, extra="ignore",
                                      env_ignore_empty=True, validate_by_name=True)

    @classmethod
    def from_env(cls):
        try:
            # The run folder's stack.env (a multi-node stack's layout and replication) under
            # the environment.
            return cls(_env_file=default_run_dir() / STACK_FILE)
        except ValidationError as error:
            raise UserError(_explained(cls, error)) from None

    @classmethod
    def defaults(cls):
        """The code's defaults, the environment left unread."""
        return cls.model_construct()

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Field name: the environment variable it is read from (the first of its names)."""
        prefix = cls.model_config["env_prefix"]
        named = {}
        for name, field_info in cls.model_fields.items():
            alias = field_info.validation_alias
            if isinstance(alias, AliasChoices):
                alias = alias.choices[0]
            if alias is None or isinstance(alias, str):
                named[name] = alias or f"{prefix}{name.upper()}"
        return named


class Settings(_FromEnvironment):
    """Where every server is, and how to reach it. The Spark, topic and Cassandra knobs ride
    along: every layer's storage calls need them."""

    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    cassandra_hosts: Annotated[tuple[str, ...], NoDecode] = (DEFAULT_CASSANDRA_HOSTS,)
    cassandra_port: int = 9042
    keyspace: str = "viewcount"
    s3_endpoint: str = DEFAULT_S3_ENDPOINT
    s3_bucket: str = DEFAULT_S3_BUCKET
    s3_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    # Given explicitly (AWS_* variables); see ``s3_credentials`` for the ones in effect.
    aws_access_key_id: str | None = Field(None, validation_alias="AWS_ACCESS_KEY_ID", repr=False)
    aws_secret_access_key: str | None = Field(None, validation_alias="AWS_SECRET_ACCESS_KEY", repr=False)
    views_topic: str = "views"
    dlq_topic: str = "views.dlq"
    # The counter's changed cells, for the API workers' provisional partitions (storage.cell_feed).
    cells_topic: str = "views.cells"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(None, repr=False)
    kafka_ssl_ca_location: str | None = None
    cassandra_username: str | None = None
    cassandra_password: str | None = Field(None, repr=False)
    cassandra_ssl_ca: str | None = None
    s3_ca_bundle: str | None = Field(None, validation_alias="AWS_CA_BUNDLE")
    run_dir: Path = Field(default_factory=default_run_dir, validation_alias="VIEWCOUNT_HOME")
    # Nodes of each of Kafka and Cassandra that `viewcount stack up` runs (stack.env says).
    stack_nodes: int = 1
    cache_dir: Path = Field(default_factory=default_cache_dir, validation_alias="VIEWCOUNT_CACHE")
    # The tuning knobs every layer's storage calls need; the code's defaults unless from_env.
    spark: "SparkKnobs" = Field(default_factory=lambda: SparkKnobs.defaults())
    topics: "TopicKnobs" = Field(default_factory=lambda: TopicKnobs.defaults())
    cassandra: "CassandraKnobs" = Field(default_factory=lambda: CassandraKnobs.defaults())

    @classmethod
    def from_env(cls) -> "Settings":
        knobs = {"spark": SparkKnobs.from_env(), "topics": TopicKnobs.from_env(),
                 "cassandra": CassandraKnobs.from_env()}
        try:
            return cls(_env_file=default_run_dir() / STACK_FILE, **knobs)
        except ValidationError as error:
            raise UserError(_explained(cls, error)) from None

    @classmethod
    def variables(cls) -> dict[str, str]:
        named = super().variables()
        named["s3_region"] = "AWS_REGION"
        for knob in ("spark", "topics", "cassandra"):
            named.pop(knob, None)
        return named

    def replaced(self, **changes) -> "Settings":
        """These settings with some values changed (another keyspace, topic, host ...)."""
        return self.model_copy(update=changes)

    @field_validator("cassandra_hosts", mode="before")
    @classmethod
    def _host_list(cls, value):
        if isinstance(value, str):
            return tuple(host.strip() for host in value.split(",") if host.strip())
        return value

    @field_validator("cassandra_port", mode="before")
    @classmethod
    def _a_port(cls, value):
        text = str(value).strip()
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise ValueError(f"must be a port number (1-65535), got {text!r}")
        return int(text)

    @field_validator("stack_nodes", mode="before")
    @classmethod
    def _node_count(cls, value):
        try:
            return stack_node_count(str(value).strip() or "1")
        except ValueError as error:
            raise ValueError(f"must be {error}") from None

    @field_validator("run_dir", "cache_dir", mode="before")
    @classmethod
    def _expanded(cls, value):
        return Path(value).expanduser() if isinstance(value, str) else value

    @field_validator("kafka_security_protocol", mode="before")
    @classmethod
    def _protocol(cls, value):
        return (_stripped_or_none(value) or "PLAINTEXT").upper()

    @field_validator("kafka_sasl_mechanism", mode="before")
    @classmethod
    def _mechanism(cls, value):
        value = _stripped_or_none(value)
        return value.upper() if isinstance(value, str) else value

    @field_validator("kafka_sasl_username", "cassandra_username", mode="before")
    @classmethod
    def _name(cls, value):
        return _stripped_or_none(value)

    @field_validator("kafka_ssl_ca_location", "cassandra_ssl_ca", "s3_ca_bundle", mode="before")
    @classmethod
    def _ca_file(cls, value):
        return _a_path(value)

    @model_validator(mode="after")
    def _secure_as_asked(self):
        problem = next(_security_problems(self), None)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def s3_credentials_given(self) -> bool:
        """True when the user brought an S3 key pair (no local one is generated then)."""
        return bool(self.aws_access_key_id and self.aws_secret_access_key)

    def s3_credentials(self) -> tuple[str | None, str | None]:
        """The S3 key pair in effect: the one given, else the local stack's generated one,
        read from the run folder now (it may have been written after these settings)."""
        if self.s3_credentials_given:
            return self.aws_access_key_id, self.aws_secret_access_key
        path = self.run_dir / CREDENTIALS_FILE
        generated = dotenv_values(path) if path.is_file() else {}
        return generated.get("AWS_ACCESS_KEY_ID"), generated.get("AWS_SECRET_ACCESS_KEY")

    @property
    def restatement_days(self) -> int:
        """How many days back the nightly run restates promoted days; the views topic
        refuses records stamped before then (VIEWCOUNT_RESTATEMENT_DAYS, read with the topics'
        knobs because the topics enforce it)."""
        return self.topics.restatement_days

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def spark_connectors_home(self) -> Path:
        """Where the Kafka and S3A connector jars are cached (filled by ``stack up``)."""
        return self.cache_dir / f"spark-connectors-{SPARK_VERSION}-hadoop{HADOOP_VERSION}"

    @property
    def kafka_addresses(self) -> list[tuple[str, int]]:
        """Every (host, port) of the bootstrap list."""
        return [_host_port(part.strip(), 9092) for part in self.kafka_bootstrap.split(",") if part.strip()]

    @property
    def kafka_address(self) -> tuple[str, int]:
        return self.kafka_addresses[0]

    @property
    def s3_address(self) -> tuple[str, int]:
        without_scheme = self.s3_endpoint.split("://", 1)[-1].rstrip("/")
        return _host_port(without_scheme, 443 if self.s3_endpoint.startswith("https") else 80)


def _security_problems(settings: Settings):
    """One-line descriptions of contradictory or incomplete security settings."""
    protocol, mechanism = settings.kafka_security_protocol, settings.kafka_sasl_mechanism
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        yield (f"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of "
               f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}")
    elif settings.kafka_uses_sasl:
        if mechanism not in KAFKA_SASL_MECHANISMS:
            got = repr(mechanism) if mechanism else "unset"
            yield (f"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL={protocol} needs VIEWCOUNT_KAFKA_SASL_MECHANISM, "
                   f"one of {', '.join(KAFKA_SASL_MECHANISMS)} (it is {got})")
        if not settings.kafka_sasl_username or not settings.kafka_sasl_password:
            yield (f"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL={protocol} needs both "
                   "VIEWCOUNT_KAFKA_SASL_USERNAME and VIEWCOUNT_KAFKA_SASL_PASSWORD")
    elif mechanism or settings.kafka_sasl_username or settings.kafka_sasl_password:
        yield (f"Kafka SASL variables are set but VIEWCOUNT_KAFKA_SECURITY_PROTOCOL is {protocol}: "
               "use SASL_SSL (or SASL_PLAINTEXT) or unset them")
    if settings.kafka_ssl_ca_location and not settings.kafka_uses_tls:
        yield (f"VIEWCOUNT_KAFKA_SSL_CA_LOCATION is set but VIEWCOUNT_KAFKA_SECURITY_PROTOCOL is "
               f"{protocol}: use SSL or SASL_SSL")
    if bool(settings.cassandra_username) != bool(settings.cassandra_password):
        yield "VIEWCOUNT_CASSANDRA_USERNAME and VIEWCOUNT_CASSANDRA_PASSWORD must be set together"
    if not settings.s3_endpoint.startswith(("http://", "https://")):
        yield f"VIEWCOUNT_S3_ENDPOINT={settings.s3_endpoint!r} must start with http:// or https://"
    for name, path in (("VIEWCOUNT_KAFKA_SSL_CA_LOCATION", settings.kafka_ssl_ca_location),
                       ("VIEWCOUNT_CASSANDRA_SSL_CA", settings.cassandra_ssl_ca),
                       ("AWS_CA_BUNDLE", settings.s3_ca_bundle)):
        if path and not Path(path).is_file():
            yield f"{name}={path!r}: no such file (a PEM file of CA certificates is expected)"


# -- knobs: the rest of the environment, typed and checked by pydantic-settings ---------------

PositiveInt = Annotated[int, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
QuickJit = Literal["short-lived", "all", "none"]
# A majority of the replicas (of the local data centre, of each, or all of them) answers
# every read and acknowledges every write, so each read meets each acknowledged write.
CassandraConsistency = Literal["QUORUM", "LOCAL_QUORUM", "EACH_QUORUM", "ALL"]
# The driver's levels below a quorum, refused with their reason.
BELOW_QUORUM = ("ANY", "ONE", "TWO", "THREE", "LOCAL_ONE")


class _Knobs(_FromEnvironment):
    """Each field is read from the variable ``<env_prefix><FIELD NAME>``; an unset or empty
    variable leaves the default."""

    model_config = SettingsConfigDict(str_strip_whitespace=True)


def _explained(knobs: type[_FromEnvironment], error: ValidationError) -> str:
    """One line naming the variable, what it must be and what it was."""
    first = error.errors()[0]
    if not first["loc"]:  # a rule across fields states its own message
        return str(first["msg"]).removeprefix("Value error, ")
    variable = knobs.variables().get(str(first["loc"][0]), str(first["loc"][0]))
    got, kind = first.get("input"), first["type"]
    bounds = {name: f"{bound:g}" if isinstance(bound, float) else bound
              for name, bound in (first.get("ctx") or {}).items()}
    if kind in ("int_parsing", "float_parsing", "int_from_float", "finite_number"):
        return f"{variable} must be a number, got {got!r}"
    if kind == "greater_than_equal":
        return f"{variable} must be at least {bounds['ge']}, got {got!r}"
    if kind == "greater_than":
        return f"{variable} must be more than {bounds['gt']}, got {got!r}"
    if kind == "less_than_equal":
        return f"{variable} must be at most {bounds['le']}, got {got!r}"
    if kind == "literal_error":
        return f"{variable} must be one of {bounds['expected']}, got {got!r}"
    if kind == "value_error":  # a field's validator states what it must be and why
        return f"{variable} {str(first['msg']).removeprefix('Value error, ')}"
    return f"{variable}={got!r}: {first['msg']}"


class SparkKnobs(_Knobs):
    """Where Spark runs and how finely it shuffles."""

    # The Spark master of jobs started from Python (spark-submit's --master wins).
    spark_master: str = "local[2]"
    # The streaming jobs' shuffle partitions: their stateful stages run one task per
    # partition each batch; on a small machine fewer, larger tasks cost less per batch.
    # Fixed when a checkpoint starts.
    shuffle_partitions: PositiveInt = 2
    # A batch run shuffles once per day: more partitions, merged by adaptive execution.
    batch_shuffle_partitions: PositiveInt = 16
    # Which local drivers compile with the JVM's quick compiler alone (C1), which reaches
    # compiled code in a third of the time: "short-lived" (the nightly's jobs: batch,
    # quality checks, reconcile; each query runs about once and the optimizing compiler,
    # C2, never pays back), "all" (the streaming jobs too: for runs over small data, such
    # as the test suite's, each saved 10-15 s), "none". true / false are read as
    # "short-lived" / "none".
    quick_jit: QuickJit = "short-lived"

    @field_validator("quick_jit", mode="before")
    @classmethod
    def _quick_jit_words(cls, value):
        if isinstance(value, str):
            value = value.strip().lower()
            return {"true": "short-lived", "1": "short-lived", "false": "none", "0": "none"}.get(value, value)
        return value

    def quick_jit_for(self, short_lived: bool) -> bool:
        """Whether a local driver of a short-lived job (or another) gets the quick compiler."""
        return self.quick_jit == "all" or (short_lived and self.quick_jit == "short-lived")


class TopicKnobs(_Knobs):
    """Partitions, retention and the bound on old record timestamps of the topics
    ``stack up`` / ``ensure_topics`` create."""

    views_partitions: PositiveInt = 6
    dlq_partitions: PositiveInt = 3
    # The counter's cell feed (storage.cell_feed): every API worker follows all of them.
    cells_partitions: PositiveInt = 3
    # -1 keeps every record (the local stack: replays of past days must not be expired on
    # arrival); production sets at least the batch cutoff plus the reprocessing window.
    topic_retention_ms: Annotated[int, Field(ge=-1)] = -1
    # Copies of each partition, and how many must have a write before it is acknowledged
    # (producers send with acks=all). One broker locally; a 3-node stack writes 3 and 2.
    topic_replication_factor: PositiveInt = 1
    topic_min_insync_replicas: PositiveInt = 1
    # The restatement horizon (VIEWCOUNT_RESTATEMENT_DAYS; ``Settings.restatement_days``):
    # the nightly run restates promoted days up to this many days back, and the views topic
    # refuses records stamped further back than that plus a day (storage.topics), so no
    # record lands in a closed day nothing will restate any more.
    restatement_days: PositiveInt = DEFAULT_RESTATEMENT_DAYS

    @model_validator(mode="after")
    def _insync_within_replicas(self):
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise ValueError(
                f"VIEWCOUNT_TOPIC_MIN_INSYNC_REPLICAS ({self.topic_min_insync_replicas}) cannot exceed "
                f"VIEWCOUNT_TOPIC_REPLICATION_FACTOR ({self.topic_replication_factor})")
        return self


class CassandraKnobs(_Knobs):
    """Consistency of every read and write, the keyspace's replication when created, and
    who writes a Spark job's cells."""

    model_config = SettingsConfigDict(env_prefix="VIEWCOUNT_CASSANDRA_")

    consistency: CassandraConsistency = "LOCAL_QUORUM"  # the driver's name of a level, any case
    # One node locally; production gives NetworkTopologyStrategy, e.g.
    # {'class': 'NetworkTopologyStrategy', 'dc1': 3}.
    replication: str = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    # Who writes a Spark job's cells: the executors' JVMs (storage.jvm_rows, the Java
    # driver; ~an order of magnitude less CPU per row) or their Python workers.
    writer: Literal["jvm", "python"] = "jvm"

    @field_validator("consistency", mode="before")
    @classmethod
    def _quorum(cls, value):
        """No level below a quorum: a read answered by fewer replicas may come from one that
        missed a write (a node back from an outage, its hints not yet replayed), and the API
        keeps a promoted day's partition in memory once read (final numbers do not change),
        so a short count would be billed from until evicted. RF 1 (the local stack) loses
        nothing: its quorum is its one node."""
        value = value.strip().upper() if isinstance(value, str) else value
        if value in BELOW_QUORUM:
            raise ValueError(f"must be QUORUM, LOCAL_QUORUM, EACH_QUORUM or ALL, got {value!r}: "
                             "a read below a quorum may come from a replica that missed a write")
        return value


class ReconcileKnobs(_Knobs):
    """``viewcount reconcile``'s defaults when a flag is not given (and the DAG's)."""

    model_config = SettingsConfigDict(env_prefix="VIEWCOUNT_RECONCILE_")

    prefix: str = ""  # S3 key prefix of the speed snapshot and the reports
    # One day's cells are a few million rows a side at most: a handful of partitions.
    shuffle_partitions: PositiveInt = 8
    # Tolerances (see reconcile.tolerances); None: the code's default.
    billable_abs: NonNegative | None = None
    billable_rel: NonNegative | None = None
    nonbillable_abs: NonNegative | None = None
    nonbillable_rel: NonNegative | None = None
    # The batch_totals quality suite warns when views of re-stamped retries (event ids
    # counted in more than one minute) exceed this share of the day's views.
    max_restamped_share: NonNegative = 0.01


TOP_ROWS_STORED = 1000  # batch_top_videos holds the first 1,000 ranks of a day


class ServingKnobs(_Knobs):
    """The API's limits (``serving.limits.Limits``)."""

    max_range_days: PositiveInt = 31  # longest [start, end) a views query may ask for
    max_top_limit: Annotated[int, Field(ge=1, le=TOP_ROWS_STORED)] = TOP_ROWS_STORED
    # Promoted (video, day, version) partitions kept in memory per worker; 0 turns it off.
    serving_cache_entries: Annotated[int, Field(ge=0)] = 20_000
    # Cassandra's time limit per read before the API answers 503.
    serving_timeout_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 5.0
    # A read not answered within this is sent again to the next node (speculative execution;
    # the first answer wins): a node that has just died does not hold answers up to the
    # timeout. 0 turns it off.
    serving_speculative_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.2
    # Promoted versions are read again when older than this: a promotion or rollback
    # reaches answers within it (plus one read).
    serving_promotion_refresh_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 0.5
    # A provisional day's speed partition is answered from memory for at most this long
    # after its read was sent (how far an answer may lag the speed table); 0: read each time.
    serving_speed_cache_s: Annotated[float, Field(ge=0, le=60, allow_inf_nan=False)] = 0.25
    # Provisional (video, day) partitions a worker holds in memory, kept current by the
    # counter's cell feed (serving.live; least recently asked dropped first); 0: no feed,
    # every provisional answer read from Cassandra (through the speed cache above).
    serving_live_partitions: Annotated[int, Field(ge=0)] = 100_000
    # A worker further behind the cell feed than this answers from Cassandra reads until it
    # follows again (from the feed's end), and says so in /metrics and /healthz.
    serving_live_max_lag_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 1.0
    # Token bucket per client address and per worker (serving.rate_limit): requests a second
    # and the burst allowed above it; a rate of 0 turns the limit off.
    rate_limit_rps: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 1000.0
    rate_limit_burst: Annotated[int, Field(ge=1)] = 2000


class DagKnobs(_Knobs):
    """The nightly DAG and ``viewcount nightly``."""

    spark_conn_id: str = "viewcount_spark"  # the Airflow connection spark-submit uses
    # Between retries of a failed task; shortened for runs driven by hand or by tests.
    dag_retry_delay_seconds: NonNegative = 120.0
    # The private Airflow home of ``viewcount nightly`` and ``viewcount airflow up``
    # (default: <run dir>/airflow).
    airflow_home: Path | None = None
    # Where ``viewcount airflow up`` serves Airflow's UI and REST API (on 127.0.0.1 only).
    airflow_api_port: Annotated[int, Field(ge=1, le=65535)] = 8794

    def nightly_airflow_home(self, settings: Settings) -> Path:
        return (self.airflow_home or settings.run_dir / "airflow").expanduser()


KNOBS: tuple[type[_Knobs], ...] = (SparkKnobs, TopicKnobs, CassandraKnobs, ReconcileKnobs, ServingKnobs,
                                   DagKnobs)


Settings.model_rebuild()  # its knob fields name the classes above
