from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings.errors import UserError
from settings.environment import DagKnobs, ReconcileKnobs, Settings
from tests.support.ports import free_port

VIEWCOUNT = str(Path(sys.executable).parent / "viewcount")


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
    assert settings.s3_credentials() == (None, None)


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
    assert settings.s3_credentials() == ("generated", "s3cret")
    assert "s3cret" not in repr(settings)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    assert Settings.from_env().s3_credentials() == ("from-env", "env-secret")


def test_generated_credentials_are_read_when_used_not_when_settings_are_made(monkeypatch, tmp_path):
    """A first run: the command reads its settings, then ``stack up`` generates the local
    MinIO's credentials; the settings already held must see them (they went stale once)."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("VIEWCOUNT_HOME", str(tmp_path / "never-held-a-stack"))
    settings = Settings.from_env()
    assert settings.s3_credentials() == (None, None)

    from infra.servers import ensure_local_credentials

    ensure_local_credentials(settings)
    access_key, secret_key = settings.s3_credentials()
    assert access_key.startswith("viewcount-") and len(secret_key) >= 24
    ensure_local_credentials(settings)  # once: a second stack up keeps them
    assert settings.s3_credentials() == (access_key, secret_key)


def test_tuning_knobs_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VIEWCOUNT_VIEWS_PARTITIONS", "12")
    monkeypatch.setenv("VIEWCOUNT_SPARK_MASTER", "spark://spark-master:7077")
    monkeypatch.setenv("VIEWCOUNT_CASSANDRA_CONSISTENCY", "each_quorum")
    monkeypatch.setenv("VIEWCOUNT_TOPIC_RETENTION_MS", "")  # empty: the default
    settings = Settings.from_env()
    assert settings.topics.views_partitions == 12
    assert settings.topics.topic_retention_ms == -1
    assert settings.spark.spark_master == "spark://spark-master:7077"
    assert settings.cassandra.consistency == "EACH_QUORUM"
    assert Settings.defaults().topics.views_partitions == 6  # made in code: the code's defaults


@pytest.mark.parametrize("name, value, message", [
    ("VIEWCOUNT_VIEWS_PARTITIONS", "abc", "VIEWCOUNT_VIEWS_PARTITIONS must be a number, got 'abc'"),
    ("VIEWCOUNT_DLQ_PARTITIONS", "0", "VIEWCOUNT_DLQ_PARTITIONS must be at least 1, got '0'"),
    ("VIEWCOUNT_CELLS_PARTITIONS", "0", "VIEWCOUNT_CELLS_PARTITIONS must be at least 1, got '0'"),
    ("VIEWCOUNT_SHUFFLE_PARTITIONS", "2.5", "VIEWCOUNT_SHUFFLE_PARTITIONS must be a number, got '2.5'"),
    ("VIEWCOUNT_CASSANDRA_CONSISTENCY", "MOST", "VIEWCOUNT_CASSANDRA_CONSISTENCY must be one of 'QUORUM'"),
    ("VIEWCOUNT_CASSANDRA_PORT", "90420", r"VIEWCOUNT_CASSANDRA_PORT must be a port number \(1-65535\), got '90420'"),
])
def test_a_bad_value_is_one_user_error_naming_its_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(UserError, match=message):
        Settings.from_env()


@pytest.mark.parametrize("level", ["ONE", "local_one", "TWO", "THREE", "ANY"])
def test_a_consistency_below_quorum_is_refused(monkeypatch, level):
    """A read answered by fewer than a quorum of replicas may come from one that missed a
    write, and the API keeps a promoted day's partition in memory for good once read."""
    monkeypatch.setenv("VIEWCOUNT_CASSANDRA_CONSISTENCY", level)
    with pytest.raises(UserError, match=rf"^VIEWCOUNT_CASSANDRA_CONSISTENCY must be QUORUM, LOCAL_QUORUM, "
                                        rf"EACH_QUORUM or ALL, got '{level.upper()}': "):
        Settings.from_env()


@pytest.mark.parametrize("level", ["QUORUM", "local_quorum", "EACH_QUORUM", "ALL"])
def test_a_quorum_consistency_is_taken(monkeypatch, level):
    monkeypatch.setenv("VIEWCOUNT_CASSANDRA_CONSISTENCY", level)
    assert Settings.from_env().cassandra.consistency == level.upper()


def test_a_command_given_a_consistency_below_quorum_stops_in_one_line(tmp_path):
    """`viewcount serve`, the store billing reads, refuses before it listens."""
    closed = free_port()  # nothing listens there: a command that got further fails fast
    env = {**os.environ, "VIEWCOUNT_HOME": str(tmp_path), "VIEWCOUNT_CASSANDRA_CONSISTENCY": "ONE",
           "VIEWCOUNT_CASSANDRA_PORT": str(closed), "VIEWCOUNT_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed}"}
    try:
        result = subprocess.run([VIEWCOUNT, "serve", "--port", "0"], env=env, capture_output=True, text=True,
                                timeout=60)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"`viewcount serve` started at consistency ONE: {expired.stderr!r}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("viewcount serve: error: VIEWCOUNT_CASSANDRA_CONSISTENCY must be QUORUM, "
                                    "LOCAL_QUORUM, EACH_QUORUM or ALL, got 'ONE'"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_dag_and_reconcile_knobs_are_checked_too(monkeypatch):
    monkeypatch.setenv("VIEWCOUNT_DAG_RETRY_DELAY_SECONDS", "soon")
    with pytest.raises(UserError, match="VIEWCOUNT_DAG_RETRY_DELAY_SECONDS must be a number, got 'soon'"):
        DagKnobs.from_env()
    monkeypatch.setenv("VIEWCOUNT_RECONCILE_SHUFFLE_PARTITIONS", "-3")
    with pytest.raises(UserError, match="VIEWCOUNT_RECONCILE_SHUFFLE_PARTITIONS must be at least 1"):
        ReconcileKnobs.from_env()


# Run in a child with the umask under test: after each file operation that
# ensure_local_credentials makes (Python's audit events), every file in the run folder is
# looked at, so a secret that was on disk readable by others for any moment is seen.
_WATCH_CREDENTIALS = """
import json, os, stat, sys
from pathlib import Path
from infra.servers import ensure_local_credentials
from settings.environment import Settings

run_dir, seen, watching = Path(sys.argv[1]), [], False

def look(event, args):
    if watching and event in ("open", "os.chmod", "os.link", "os.rename", "os.remove"):
        for path in run_dir.iterdir():
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) and path.lstat().st_size:
                seen.append((event, path.name, oct(mode & 0o777)))

sys.addaudithook(look)
os.umask(int(sys.argv[2], 8))
settings = Settings.from_env()
watching = True
ensure_local_credentials(settings)
watching = False
final = run_dir / "credentials.env"
print(json.dumps({"seen": seen, "final": oct(final.stat().st_mode & 0o777), "secret": final.read_text()}))
"""


@pytest.mark.parametrize("umask", ["022", "000"])
def test_the_generated_credentials_are_never_readable_by_others(tmp_path, umask):
    """Created 0600 (os.open), not written under the umask's mode and narrowed after: a
    stack up killed in between would leave the MinIO root key readable by every user."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["VIEWCOUNT_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", _WATCH_CREDENTIALS, str(tmp_path), umask], env=env,
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "AWS_SECRET_ACCESS_KEY=" in report["secret"] and report["final"] == "0o600"
    assert report["seen"] and all(mode == "0o600" for _, _, mode in report["seen"]), report["seen"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.env"]


def test_a_second_stack_up_keeps_the_first_credentials_even_when_both_saw_none(monkeypatch, tmp_path):
    """Two `stack up` at once: the one that links its file second keeps the first's pair."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("VIEWCOUNT_HOME", str(tmp_path))
    settings = Settings.from_env()
    from infra import servers

    servers.ensure_local_credentials(settings)
    first = settings.s3_credentials()
    # The second saw no file before the first wrote it: make its existence check say so.
    monkeypatch.setattr(type(tmp_path), "is_file", lambda self: False)
    servers.ensure_local_credentials(settings)
    monkeypatch.undo()
    assert settings.s3_credentials() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.env"]
