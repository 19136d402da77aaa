"""What the topics of ours must have set (storage.topics.enforced_configs): the bounds on
record timestamps come from the counting rule and the restatement horizon."""

from __future__ import annotations

import pytest

from storage.errors import UserError
from storage.settings import Settings
from storage.topics import MS_PER_DAY, VIEWS_TIMESTAMP_AFTER_MAX_MS, enforced_configs, topic_config


def test_the_views_topic_refuses_records_older_than_the_horizon_plus_a_day():
    settings = Settings()  # the code's defaults: a horizon of 7 days
    assert settings.restatement_days == 7
    configs = enforced_configs(settings, settings.views_topic)
    assert configs["message.timestamp.before.max.ms"] == str(8 * MS_PER_DAY) == "691200000"
    assert configs["message.timestamp.after.max.ms"] == str(VIEWS_TIMESTAMP_AFTER_MAX_MS)
    assert topic_config(settings, settings.views_topic)["message.timestamp.before.max.ms"] == "691200000"


def test_the_dead_letter_topic_takes_any_record_back_however_stamped():
    settings = Settings()
    assert not {"message.timestamp.before.max.ms", "message.timestamp.after.max.ms"} & set(
        enforced_configs(settings, settings.dlq_topic))


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
