"""The layout of a multi-node local stack: node addresses, Cassandra tokens, replication,
and the run folder's stack.env that every later command reads."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from infra.servers import Cassandra, Kafka, all_servers, cassandra_tokens, node_hosts, replicas_for
from infra.stack import set_nodes, up as stack_up
from settings.errors import UserError
from settings.environment import Settings


def test_nodes_take_consecutive_loopback_addresses_unless_all_are_given():
    assert node_hosts(("127.0.0.1",), 3) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert node_hosts(("127.0.2.7",), 2) == ["127.0.2.7", "127.0.2.8"]
    assert node_hosts(("127.0.0.5", "127.0.0.9", "127.0.0.4"), 3) == ["127.0.0.5", "127.0.0.9", "127.0.0.4"]
    assert node_hosts(("cassandra.internal",), 1) == ["cassandra.internal"]
    for first in ("cassandra.internal", "10.0.0.1", "127.0.0.253"):
        with pytest.raises(UserError, match="needs a loopback IPv4 address"):
            node_hosts((first,), 3)


def test_tokens_interleave_evenly_and_never_collide():
    tokens = sorted((token, node) for node in (1, 2, 3) for token in cassandra_tokens(node, 3))
    assert len({token for token, _ in tokens}) == 12
    assert [node for _, node in tokens] == [1, 2, 3] * 4  # each node owns every third range
    gaps = {b - a for (a, _), (b, _) in zip(tokens, tokens[1:])}
    assert len(gaps) == 1 and all(-(2**63) <= token < 2**63 for token, _ in tokens)


def test_replication_is_three_copies_two_to_acknowledge_at_most():
    assert replicas_for(1) == (1, 1)
    assert replicas_for(2) == (2, 1)
    assert replicas_for(3) == (3, 2)
    assert replicas_for(5) == (3, 2)


def _settings(env: dict[str, str]) -> Settings:
    with mock.patch.dict(os.environ, env, clear=True):
        return Settings.from_env()


def test_stack_env_gives_later_commands_every_node_and_the_replication(tmp_path):
    env = {"VIEWCOUNT_HOME": str(tmp_path), "VIEWCOUNT_CACHE": str(tmp_path / "cache")}
    assert set_nodes(_settings(env), 3) is True
    settings = _settings(env)
    assert settings.stack_nodes == 3
    assert settings.kafka_bootstrap == "127.0.0.1:9092,127.0.0.2:9092,127.0.0.3:9092"
    assert settings.cassandra_hosts == ("127.0.0.1", "127.0.0.2", "127.0.0.3")
    assert settings.cassandra.replication == "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}"
    assert (settings.topics.topic_replication_factor, settings.topics.topic_min_insync_replicas) == (3, 2)
    assert [server.name for server in all_servers(settings)] == [
        "kafka-1", "kafka-2", "kafka-3", "cassandra-1", "cassandra-2", "cassandra-3", "minio"]
    kafka = [server for server in all_servers(settings) if isinstance(server, Kafka)]
    assert [(k.host, k.port, k.controller_port) for k in kafka] == [
        ("127.0.0.1", 9092, 9093), ("127.0.0.2", 9092, 9093), ("127.0.0.3", 9092, 9093)]
    # The environment still wins over the file.
    assert _settings({**env, "VIEWCOUNT_TOPIC_MIN_INSYNC_REPLICAS": "3"}).topics.topic_min_insync_replicas == 3
    assert set_nodes(settings, 3) is False  # already so
    assert set_nodes(settings, 1) is True and not (tmp_path / "stack.env").exists()
    assert [server.name for server in all_servers(_settings(env))] == ["kafka", "cassandra", "minio"]


def test_a_node_renders_its_own_address_and_the_seed(tmp_path):
    env = {"VIEWCOUNT_HOME": str(tmp_path), "VIEWCOUNT_CACHE": str(tmp_path / "cache"),
           "VIEWCOUNT_CASSANDRA_HOSTS": "127.0.2.1", "VIEWCOUNT_KAFKA_BOOTSTRAP": "127.0.2.1:9092"}
    set_nodes(_settings(env), 3)
    second = Cassandra(_settings({k: v for k, v in env.items() if k in ("VIEWCOUNT_HOME", "VIEWCOUNT_CACHE")}), 2)
    second.prepare()
    yaml = (second.home / "conf" / "cassandra.yaml").read_text()
    assert "listen_address: 127.0.2.2" in yaml and 'seeds: "127.0.2.1:7000"' in yaml
    assert "auto_bootstrap: false" in yaml
    assert f"initial_token: {','.join(map(str, cassandra_tokens(2, 3)))}" in yaml


def test_more_insync_replicas_than_replicas_is_a_one_line_error():
    with pytest.raises(UserError, match=r"^VIEWCOUNT_TOPIC_MIN_INSYNC_REPLICAS \(2\) cannot exceed "
                                        r"VIEWCOUNT_TOPIC_REPLICATION_FACTOR \(1\)$"):
        _settings({"VIEWCOUNT_TOPIC_MIN_INSYNC_REPLICAS": "2"})


def test_a_bad_node_count_in_the_environment_is_a_one_line_error():
    with pytest.raises(UserError, match="VIEWCOUNT_STACK_NODES must be a number of nodes from 1 to 9"):
        _settings({"VIEWCOUNT_STACK_NODES": "12"})


def _written_by(run_dir, *homes: str) -> None:
    """Node folders holding data, as a stack that ran leaves them."""
    for home in homes:
        (run_dir / home / "data").mkdir(parents=True)
        (run_dir / home / "data" / "meta.properties").write_text("node.id=1\n")


def test_a_run_folder_holding_data_keeps_the_node_count_that_wrote_it(tmp_path):
    env = {"VIEWCOUNT_HOME": str(tmp_path), "VIEWCOUNT_CACHE": str(tmp_path / "cache")}
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "kafka.log").write_text("a start that failed before writing data\n")
    assert set_nodes(_settings(env), 3) is True  # no data yet: any layout
    assert set_nodes(_settings(env), 1) is True

    _written_by(tmp_path, "kafka", "cassandra", "minio", "checkpoints/counter")
    with pytest.raises(UserError) as refused:
        set_nodes(_settings(env), 3)
    line = str(refused.value)
    assert "\n" not in line and not (tmp_path / "stack.env").exists()
    assert line.startswith(f"{tmp_path} holds data written by a 1-node stack (kafka/data, cassandra/data)")
    assert "go back with `viewcount stack up --nodes 1`" in line
    assert (f"wipe it: `viewcount stack down`, then remove {tmp_path / 'kafka'}, {tmp_path / 'cassandra'}, "
            f"{tmp_path / 'minio' / 'data'}, {tmp_path / 'checkpoints'}") in line
    with pytest.raises(UserError, match="holds data written by a 1-node stack"):  # VIEWCOUNT_STACK_NODES too
        stack_up(_settings({**env, "VIEWCOUNT_STACK_NODES": "3"}))


def test_a_stack_of_n_nodes_refuses_any_other_count_even_one_started_half_way(tmp_path):
    env = {"VIEWCOUNT_HOME": str(tmp_path), "VIEWCOUNT_CACHE": str(tmp_path / "cache")}
    set_nodes(_settings(env), 3)
    _written_by(tmp_path, "kafka-1", "kafka-2", "cassandra-1")  # node 3 never started
    assert set_nodes(_settings(env), 3) is False
    for other in (1, 2, 5):
        with pytest.raises(UserError, match=r"holds data written by a 3-node stack \(kafka-1/data, kafka-2/data, "
                                            r"cassandra-1/data\).*--nodes 3"):
            set_nodes(_settings(env), other)
    _written_by(tmp_path, "kafka", "cassandra")  # both layouts: only a wipe helps
    with pytest.raises(UserError, match="a 1-node stack .* and a 3-node stack") as refused:
        set_nodes(_settings(env), 3)
    assert "go back" not in str(refused.value)
