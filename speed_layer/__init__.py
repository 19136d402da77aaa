"""The speed layer: two independent streaming jobs over the `views` topic.

``counter`` counts views per video per minute into Cassandra (and sends invalid records
to the dead-letter topic); ``archiver`` writes every raw record to Parquet on S3. Each
has its own checkpoint and runs as its own process: one failing never touches the other.
"""
