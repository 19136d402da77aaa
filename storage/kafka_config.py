"""How every Kafka client of the project connects: address, TLS and SASL, in one place.

``client_config`` is for confluent-kafka (librdkafka) producers, consumers and admin
clients; ``spark_options`` is for Spark's Kafka source and sink (the Java client, whose
settings take a ``kafka.`` prefix). Both follow ``Settings``: with the defaults they are
plaintext and unauthenticated, as the local stack is.

Every reader of the views topic reads committed records only: a transactional producer's
aborted records are never counted or archived, and the offsets of transaction markers
(which no consumer ever receives) are skipped offsets, not gaps (``storage.archive``).
Spark's Kafka source reads uncommitted by default, so its readers take
``spark_reader_options``; librdkafka consumers read committed by default (its
``isolation.level``), which the project never changes.
"""

from __future__ import annotations

import logging

from settings.environment import Settings

# For a client's ``logger`` setting: librdkafka's own connection chatter (a line per
# reconnect attempt, about 20 a second while a broker is down) goes nowhere; the project's
# code reports what failed itself.
QUIET_LOGGER = logging.getLogger("viewcount.librdkafka")
QUIET_LOGGER.addHandler(logging.NullHandler())
QUIET_LOGGER.propagate = False

JAAS_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def client_config(settings: Settings, **extra) -> dict:
    """librdkafka settings for the cluster, plus the caller's own (``group.id`` ...)."""
    config = {"bootstrap.servers": settings.kafka_bootstrap,
              "security.protocol": settings.kafka_security_protocol}
    if settings.kafka_uses_sasl:
        config.update({"sasl.mechanism": settings.kafka_sasl_mechanism,
                       "sasl.username": settings.kafka_sasl_username,
                       "sasl.password": settings.kafka_sasl_password})
    if settings.kafka_uses_tls and settings.kafka_ssl_ca_location:
        config["ssl.ca.location"] = settings.kafka_ssl_ca_location
    return {**config, **extra}


def _jaas_quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def jaas_config(settings: Settings) -> str:
    """The Java client's ``sasl.jaas.config`` line for the configured user."""
    module = JAAS_LOGIN_MODULES[settings.kafka_sasl_mechanism]
    return (f"{module} required username={_jaas_quoted(settings.kafka_sasl_username)} "
            f"password={_jaas_quoted(settings.kafka_sasl_password)};")


def spark_options(settings: Settings) -> dict[str, str]:
    """Options of ``format("kafka")`` readers and writers (``.options(**spark_options(s))``)."""
    options = {"kafka.bootstrap.servers": settings.kafka_bootstrap,
               "kafka.security.protocol": settings.kafka_security_protocol}
    if settings.kafka_uses_sasl:
        options.update({"kafka.sasl.mechanism": settings.kafka_sasl_mechanism,
                        "kafka.sasl.jaas.config": jaas_config(settings)})
    if settings.kafka_uses_tls and settings.kafka_ssl_ca_location:
        options.update({"kafka.ssl.truststore.type": "PEM",
                        "kafka.ssl.truststore.location": settings.kafka_ssl_ca_location})
    return options


def spark_reader_options(settings: Settings) -> dict[str, str]:
    """``spark_options`` for a reader of the views topic: committed records only."""
    return {**spark_options(settings), "kafka.isolation.level": "read_committed"}
