"""What the topics of ours must have set (storage.topics.enforced_configs): the bounds on
record timestamps come from the counting rule and the restatement horizon."""

from __future__ import annotations

import pytest

from settings.errors import UserError
from settings.environment import Settings
from storage.topics import (
    MS_PER_DAY, VIEWS_TIMESTAMP_AFTER_MAX_MS, enforced_configs, topic_config, topic_specs,
)


def test_the_views_topic_refuses_records_older_than_the_horizon_plus_a_day():
    settings = Settings.defaults()  # the code's defaults: a horizon of 7 days
    assert settings.restatement_days == 7
    configs = enforced_configs(settings, settings.views_topic)
    assert configs["message.timestamp.before.max.ms"] == str(8 * MS_PER_DAY) == "691200000"
    assert configs["message.timestamp.after.max.ms"] == str(VIEWS_TIMESTAMP_AFTER_MAX_MS)
    assert topic_config(settings, settings.views_topic)["message.timestamp.before.max.ms"] == "691200000"


def test_the_dead_letter_topic_takes_any_record_back_however_stamped():
    settings = Settings.defaults()
    assert not {"message.timestamp.before.max.ms", "message.timestamp.after.max.ms"} & set(
        enforced_configs(settings, settings.dlq_topic))


def test_the_cell_feed_is_compacted_kept_a_few_days_and_not_bounded_in_time(monkeypatch):
    monkeypatch.setenv("VIEWCOUNT_CELLS_PARTITIONS", "4")
    monkeypatch.setenv("VIEWCOUNT_TOPIC_RETENTION_MS", "-1")
    monkeypatch.setenv("VIEWCOUNT_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("VIEWCOUNT_TOPIC_MIN_INSYNC_REPLICAS", "2")
    settings = Settings.from_env()
    assert topic_specs(settings)[settings.cells_topic] == 4
    configs = topic_config(settings, settings.cells_topic)
    assert configs["cleanup.policy"] == "compact,delete"
    assert configs["retention.ms"] == str(3 * MS_PER_DAY)  # not the views topic's "keep every record"
    assert configs["min.insync.replicas"] == "2"
    assert not {"message.timestamp.before.max.ms", "message.timestamp.after.max.ms"} & set(configs)
    assert topic_config(settings, settings.views_topic)["retention.ms"] == "-1"
    assert "cleanup.policy" not in topic_config(settings, settings.views_topic)


def test_the_horizon_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("VIEWCOUNT_RESTATEMENT_DAYS", "30")
    settings = Settings.from_env()
    assert settings.restatement_days == 30
    assert enforced_configs(settings, settings.views_topic)["message.timestamp.before.max.ms"] == str(31 * MS_PER_DAY)


@pytest.mark.parametrize(("value", "message"), [
    ("0", "VIEWCOUNT_RESTATEMENT_DAYS must be at least 1, got '0'"),
    ("a week", "VIEWCOUNT_RESTATEMENT_DAYS must be a number, got 'a week'"),
])
def test_a_bad_horizon_is_one_user_error_naming_its_variable(monkeypatch, value, message):
    monkeypatch.setenv("VIEWCOUNT_RESTATEMENT_DAYS", value)
    with pytest.raises(UserError, match=message):
        Settings.from_env()
