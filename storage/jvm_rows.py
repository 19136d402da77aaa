"""Rows of a DataFrame written to Cassandra from the executors' JVMs: the thin adapter of
the project's cell writer (``jvm/cell-writer``, class ``viewcount.cells.RowWriter``, on the
Apache Cassandra Java driver).

Spark 4 has no Spark Cassandra Connector, and writing from Python workers costs ~22 µs of
binding per row (``bench/minute_writes.py``): most of a counter batch's write time. The
statement stays here in storage (the writer knows no table): the DataFrame's columns bind
to its markers in order, epoch days to a ``date`` and epoch milliseconds to a
``timestamp``; rows sharing their first ``key_columns`` values are one partition's and go
out in unlogged batches, as ``storage.minute_counts.write_partition_grouped`` does from
Python. The jar reaches every JVM with the connector jars (``spark_runtime.jars``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from settings.environment import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

WRITER_CLASS = "viewcount.cells.RowWriter"


def connection(settings: Settings) -> dict[str, str]:
    """What the JVM writer connects with: the same servers, keyspace, consistency and
    credentials as ``storage.cassandra.build_cluster``."""
    return {
        "hosts": ",".join(settings.cassandra_hosts),
        "port": str(settings.cassandra_port),
        "keyspace": settings.keyspace,
        "consistency": settings.cassandra.consistency,
        "username": settings.cassandra_username or "",
        "password": settings.cassandra_password or "",
        "ssl_ca": settings.cassandra_ssl_ca or "",
    }


def write_rows(frame: "DataFrame", statement: str, settings: Settings, *, key_columns: int,
               rows_per_batch: int, concurrency: int) -> int:
    """Execute ``statement`` once per row of ``frame`` from the executors; returns the rows
    written, counted by the tasks that wrote them. Raises when any write fails."""
    jvm = frame.sparkSession._jvm
    writer = jvm.viewcount.cells.RowWriter
    return int(writer.write(frame._jdf, statement, key_columns, rows_per_batch, concurrency, connection(settings)))
