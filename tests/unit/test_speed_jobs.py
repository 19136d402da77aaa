"""What a streaming job prints when a query fails, and what its progress listener reads."""

from __future__ import annotations

from speed_layer.jobs import failure_reason

WRAPPED = """py4j.Py4JException: An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/work/main/storage/minute_counts.py", line 76, in write_partition_grouped
    execute_concurrent(session, rows)
cassandra.cluster.NoHostAvailable: ('Unable to complete the operation against any hosts', {})

\tat py4j.Protocol.getReturnValue(Protocol.java:476)
\tat py4j.reflection.PythonProxyHandler.invoke(PythonProxyHandler.java:108)
"""


def test_an_error_of_our_python_sink_is_named_not_the_proxy_that_carried_it():
    assert failure_reason(WRAPPED) == (
        "cassandra.cluster.NoHostAvailable: ('Unable to complete the operation against any hosts', {})")


def test_the_python_error_is_found_also_without_a_java_stack_trace():
    text = ("[STREAM_FAILED] Query [id = 1] terminated with exception: An exception was raised by the Python "
            "Proxy. Return Message: Traceback (most recent call last):\n"
            '  File "/work/main/storage/minute_counts.py", line 76, in write_partition_grouped\n'
            "    execute_concurrent(session, rows)\n"
            "cassandra.cluster.NoHostAvailable: ('Unable to complete the operation against any hosts', {})\n")
    assert failure_reason(text) == (
        "cassandra.cluster.NoHostAvailable: ('Unable to complete the operation against any hosts', {})")


def test_a_java_error_is_its_first_line():
    text = "org.apache.kafka.common.errors.TimeoutException: Timeout of 60000ms expired\n\tat a.b(C.java:1)\n"
    assert failure_reason(text) == "org.apache.kafka.common.errors.TimeoutException: Timeout of 60000ms expired"


def test_an_empty_exception_text_still_gives_a_reason():
    assert failure_reason("\n \n") == "unknown error"


def test_a_progress_without_parsable_offsets_has_none_instead_of_crashing_the_listener():
    from speed_layer.progress import _offsets

    assert _offsets('{"views": {"0": 5, "1": 7}}') == {0: 5, 1: 7}
    assert [_offsets(text) for text in (None, "", " ", "null", "not json")] == [{}] * 5


def test_the_watermark_ahead_of_the_batch_start_is_published_for_alerting():
    from prometheus_client import REGISTRY

    from speed_layer.progress import BatchReport, publish

    def report(watermark, started_at="2026-12-02T10:00:00.000Z"):
        return BatchReport(job="ahead-test", batch_id=3, rows_in=0, rows_per_second=0.0, duration_ms=10,
                           late_dropped=0, duplicates_dropped=0, invalid={}, lag={}, watermark=watermark,
                           started_at=started_at)

    # A producer 59 minutes fast, 10 minutes of delay: the watermark is 49 minutes ahead.
    fast = report("2026-12-02T10:49:00.000Z")
    assert fast.watermark_ahead_seconds() == 49 * 60
    publish(fast)
    assert REGISTRY.get_sample_value("viewcount_speed_watermark_ahead_seconds", {"job": "ahead-test"}) == 2940
    # A replayed past day: far behind; no watermark yet: nothing to say, the gauge is kept.
    assert report("2026-11-12T23:50:00.000Z").watermark_ahead_seconds() == -(19 * 86_400 + 10 * 3_600 + 600)
    publish(report(None))
    assert REGISTRY.get_sample_value("viewcount_speed_watermark_ahead_seconds", {"job": "ahead-test"}) == 2940


def test_a_restart_waits_its_delay_unless_the_servers_it_found_down_answer_again(monkeypatch):
    import time

    from speed_layer import jobs

    monkeypatch.setattr(jobs, "SETTLE_S", 0.1)
    answers = iter([False, False, True])  # down, down, back
    started = time.monotonic()
    assert jobs.wait_before_restart(30.0, lambda: next(answers), poll_s=0.05) is True
    assert time.monotonic() - started < 1.0

    started = time.monotonic()  # never seen down: the failure was something else, so the full delay
    assert jobs.wait_before_restart(0.3, lambda: True, poll_s=0.05) is False
    assert time.monotonic() - started >= 0.3

    started = time.monotonic()  # still down at the end: the full delay too
    assert jobs.wait_before_restart(0.3, lambda: False, poll_s=0.05) is True
    assert time.monotonic() - started >= 0.3

    started = time.monotonic()  # back before this wait began, down during an earlier one: settle only
    assert jobs.wait_before_restart(30.0, lambda: True, recovering=True, poll_s=0.05) is True
    assert time.monotonic() - started < 1.0


def test_the_dead_letter_query_reads_in_batches_no_smaller_than_the_default_bound():
    from speed_layer.counter import CounterOptions
    from speed_layer.kafka_source import SourceOptions

    default = SourceOptions.max_offsets_per_trigger

    def dead_letter_bound(bound):
        options = CounterOptions(checkpoint="/tmp/x", source=SourceOptions(starting_offsets="latest",
                                                                           max_offsets_per_trigger=bound))
        assert options.dead_letter_source.starting_offsets == "latest"
        assert options.source.max_offsets_per_trigger == bound  # the counter's own bound is untouched
        return options.dead_letter_source.max_offsets_per_trigger

    assert dead_letter_bound(10_500) == default  # a small bound is the counter's, for its watermark
    assert dead_letter_bound(2_000_000) == 2_000_000
    assert dead_letter_bound(None) is None  # no bound at all stays none


def test_each_finished_batch_stamps_its_time_for_the_stalled_job_alert():
    import time

    from prometheus_client import REGISTRY

    from speed_layer.progress import BatchReport, publish

    before = time.time()
    publish(BatchReport(job="stamp-test", batch_id=7, rows_in=10, rows_per_second=5.0, duration_ms=2000,
                        late_dropped=0, duplicates_dropped=0, invalid={}, lag={}, watermark=None))
    stamped = REGISTRY.get_sample_value("viewcount_speed_last_batch_timestamp_seconds", {"job": "stamp-test"})
    assert before <= stamped <= time.time()
