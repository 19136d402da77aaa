"""The storage layer: I/O and nothing else. Cassandra's schema (migrations) and every CQL
statement, and the typed reads and writes each layer uses, Kafka and S3 too.

Importing this package never imports Spark: serving depends on it and must stay Spark-free.
Settings live in ``settings``, the Spark runtime in ``spark_runtime``.
"""
