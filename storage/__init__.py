"""Shared storage layer: settings, Cassandra schema and typed reads/writes, Kafka and S3 access.

Importing this package never imports Spark: serving depends on it and must stay Spark-free.
Spark-specific helpers live in ``storage.spark`` and are imported only by the Spark layers.
"""
