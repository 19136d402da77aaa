"""The Spark runtime the jobs share: sessions and spark-submit options, the connector jars,
and the class-data archive that halves a local driver's start-up."""
