from __future__ import annotations

from storage.settings import Settings


def test_defaults_point_at_the_local_stack(monkeypatch, tmp_path):
    for name in ("VIEWCOUNT_KAFKA_BOOTSTRAP", "VIEWCOUNT_CASSANDRA_HOSTS", "VIEWCOUNT_S3_ENDPOINT",
                 "VIEWCOUNT_S3_BUCKET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIEWCOUNT_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.cassandra_hosts == ("127.0.0.1",)
    assert settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.s3_address == ("127.0.0.1", 9000)
    assert settings.aws_access_key_id is None


def test_environment_overrides_and_generated_credentials(monkeypatch, tmp_path):
    (tmp_path / "credentials.env").write_text(
        "# comment\nAWS_ACCESS_KEY_ID=generated\nAWS_SECRET_ACCESS_KEY=s3cret\n")
    monkeypatch.setenv("VIEWCOUNT_HOME", str(tmp_path))
    monkeypatch.setenv("VIEWCOUNT_KAFKA_BOOTSTRAP", "broker-a:19092,broker-b:19092")
    monkeypatch.setenv("VIEWCOUNT_CASSANDRA_HOSTS", "10.0.0.1, 10.0.0.2")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    settings = Settings.from_env()
    assert settings.kafka_address == ("broker-a", 19092)
    assert settings.cassandra_hosts == ("10.0.0.1", "10.0.0.2")
    assert (settings.aws_access_key_id, settings.aws_secret_access_key) == ("generated", "s3cret")
    assert "s3cret" not in repr(settings)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    assert Settings.from_env().aws_access_key_id == "from-env"
