"""``viewcount produce``: realistic synthetic view events into Kafka, with a ground-truth oracle.

The generator (``generator.py``) is pure and seeded: given the same seed, options and arrival
times it yields the same records. With ``--day`` the arrival times are seeded too, so a run
is reproducible byte for byte, Kafka timestamps included; without it they are the wall
clock, and event times follow it. ``command.py`` wires the generator to Kafka
(``kafka_sink.py``) and writes what the generator knows to be true (``truth.py``) as the
oracle for tests and reconciliation.
"""
