"""TLS and authentication settings: what each client is given, and the errors a user gets."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest
from confluent_kafka import Consumer, Producer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from storage.cassandra import security_options
from settings.errors import UserError
from storage.kafka_config import client_config, spark_options
from storage.s3 import client as s3_client
from settings.environment import Settings
from spark_runtime.session import spark_conf
from viewcount import cli

SECURITY_VARIABLES = (
    "VIEWCOUNT_KAFKA_SECURITY_PROTOCOL", "VIEWCOUNT_KAFKA_SASL_MECHANISM", "VIEWCOUNT_KAFKA_SASL_USERNAME",
    "VIEWCOUNT_KAFKA_SASL_PASSWORD", "VIEWCOUNT_KAFKA_SSL_CA_LOCATION", "VIEWCOUNT_CASSANDRA_USERNAME",
    "VIEWCOUNT_CASSANDRA_PASSWORD", "VIEWCOUNT_CASSANDRA_SSL_CA", "AWS_CA_BUNDLE", "VIEWCOUNT_S3_ENDPOINT",
    "VIEWCOUNT_KAFKA_BOOTSTRAP",
)
KAFKA_SECRET = 'kafka-pa"ss\\word'
CASSANDRA_SECRET = "cassandra-s3cret"


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Settings.from_env over exactly the variables a test sets."""
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIEWCOUNT_HOME", str(tmp_path))

    def settings(**variables) -> Settings:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        return Settings.from_env()

    return settings


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory):
    """A self-signed CA certificate in PEM, as an operator would mount it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "viewcount test CA")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(path)


def accepted_by_librdkafka(config: dict) -> None:
    """librdkafka refuses unknown keys, bad values and unreadable CA files when a client is built."""
    Producer(config).flush(0)
    Consumer({**config, "group.id": "security-test"}).close()


def test_defaults_are_the_local_stack_plaintext_without_authentication(env):
    settings = env()
    assert client_config(settings) == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "PLAINTEXT"}
    assert spark_options(settings) == {"kafka.bootstrap.servers": "127.0.0.1:9092",
                                       "kafka.security.protocol": "PLAINTEXT"}
    assert security_options(settings) == {}
    assert spark_conf(settings, with_connectors=False)["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    accepted_by_librdkafka(client_config(settings))


def test_client_config_keeps_the_callers_own_settings(env):
    config = client_config(env(), **{"group.id": "g", "enable.auto.commit": False})
    assert config["group.id"] == "g" and config["enable.auto.commit"] is False
    assert config["bootstrap.servers"] == "127.0.0.1:9092"


@pytest.mark.parametrize("mechanism, login_module", [
    ("SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule"),
    ("scram-sha-256", "org.apache.kafka.common.security.scram.ScramLoginModule"),
    ("PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule"),
])
def test_sasl_ssl_gives_every_client_the_user_the_mechanism_and_the_ca(env, ca_file, mechanism, login_module):
    settings = env(VIEWCOUNT_KAFKA_BOOTSTRAP="broker-1:9093,broker-2:9093",
                   VIEWCOUNT_KAFKA_SECURITY_PROTOCOL="sasl_ssl", VIEWCOUNT_KAFKA_SASL_MECHANISM=mechanism,
                   VIEWCOUNT_KAFKA_SASL_USERNAME="counter", VIEWCOUNT_KAFKA_SASL_PASSWORD=KAFKA_SECRET,
                   VIEWCOUNT_KAFKA_SSL_CA_LOCATION=ca_file)
    assert client_config(settings) == {
        "bootstrap.servers": "broker-1:9093,broker-2:9093", "security.protocol": "SASL_SSL",
        "sasl.mechanism": mechanism.upper(), "sasl.username": "counter", "sasl.password": KAFKA_SECRET,
        "ssl.ca.location": ca_file,
    }
    assert spark_options(settings) == {
        "kafka.bootstrap.servers": "broker-1:9093,broker-2:9093", "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": mechanism.upper(),
        # JAAS quoting: the password's quote and backslash are escaped.
        "kafka.sasl.jaas.config": f'{login_module} required username="counter" password="kafka-pa\\"ss\\\\word";',
        "kafka.ssl.truststore.type": "PEM", "kafka.ssl.truststore.location": ca_file,
    }
    accepted_by_librdkafka(client_config(settings))


def test_sasl_plaintext_has_no_tls_settings(env):
    settings = env(VIEWCOUNT_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", VIEWCOUNT_KAFKA_SASL_MECHANISM="PLAIN",
                   VIEWCOUNT_KAFKA_SASL_USERNAME="u", VIEWCOUNT_KAFKA_SASL_PASSWORD="p")
    assert not any(key.startswith("ssl.") for key in client_config(settings))
    assert not any(key.startswith("kafka.ssl.") for key in spark_options(settings))
    assert client_config(settings)["security.protocol"] == "SASL_PLAINTEXT"


def test_ssl_alone_verifies_the_broker_with_the_ca_and_sends_no_user(env, ca_file):
    settings = env(VIEWCOUNT_KAFKA_SECURITY_PROTOCOL="SSL", VIEWCOUNT_KAFKA_SSL_CA_LOCATION=ca_file)
    assert client_config(settings) == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SSL",
                                       "ssl.ca.location": ca_file}
    assert spark_options(settings) == {"kafka.bootstrap.servers": "127.0.0.1:9092",
                                       "kafka.security.protocol": "SSL", "kafka.ssl.truststore.type": "PEM",
                                       "kafka.ssl.truststore.location": ca_file}
    accepted_by_librdkafka(client_config(settings))


def test_secrets_never_appear_in_repr(env):
    settings = env(VIEWCOUNT_KAFKA_SECURITY_PROTOCOL="SASL_SSL", VIEWCOUNT_KAFKA_SASL_MECHANISM="PLAIN",
                   VIEWCOUNT_KAFKA_SASL_USERNAME="counter", VIEWCOUNT_KAFKA_SASL_PASSWORD=KAFKA_SECRET,
                   VIEWCOUNT_CASSANDRA_USERNAME="api", VIEWCOUNT_CASSANDRA_PASSWORD=CASSANDRA_SECRET,
                   AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="aws-s3cret")
    assert (settings.kafka_sasl_password, settings.cassandra_password) == (KAFKA_SECRET, CASSANDRA_SECRET)
    for secret in (KAFKA_SECRET, CASSANDRA_SECRET, "aws-s3cret"):
        assert secret not in repr(settings) and secret not in str(settings)
    assert "counter" in repr(settings)  # user names are not secret, and help debugging


@pytest.mark.parametrize("variables, message", [
    ({"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL": "TLS"},
     "VIEWCOUNT_KAFKA_SECURITY_PROTOCOL='TLS' is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
    ({"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VIEWCOUNT_KAFKA_SASL_MECHANISM": "PLAIN",
      "VIEWCOUNT_KAFKA_SASL_USERNAME": "counter"},
     "VIEWCOUNT_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs both VIEWCOUNT_KAFKA_SASL_USERNAME and "
     "VIEWCOUNT_KAFKA_SASL_PASSWORD"),
    ({"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VIEWCOUNT_KAFKA_SASL_USERNAME": "counter",
      "VIEWCOUNT_KAFKA_SASL_PASSWORD": "p"},
     "VIEWCOUNT_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs VIEWCOUNT_KAFKA_SASL_MECHANISM, "
     "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (it is unset)"),
    ({"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "VIEWCOUNT_KAFKA_SASL_MECHANISM": "GSSAPI",
      "VIEWCOUNT_KAFKA_SASL_USERNAME": "counter", "VIEWCOUNT_KAFKA_SASL_PASSWORD": "p"},
     "VIEWCOUNT_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs VIEWCOUNT_KAFKA_SASL_MECHANISM, "
     "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (it is 'GSSAPI')"),
    ({"VIEWCOUNT_KAFKA_SASL_USERNAME": "counter", "VIEWCOUNT_KAFKA_SASL_PASSWORD": "p"},
     "Kafka SASL variables are set but VIEWCOUNT_KAFKA_SECURITY_PROTOCOL is PLAINTEXT: "
     "use SASL_SSL (or SASL_PLAINTEXT) or unset them"),
    ({"VIEWCOUNT_KAFKA_SSL_CA_LOCATION": "/etc/hostname"},
     "VIEWCOUNT_KAFKA_SSL_CA_LOCATION is set but VIEWCOUNT_KAFKA_SECURITY_PROTOCOL is PLAINTEXT: "
     "use SSL or SASL_SSL"),
    ({"VIEWCOUNT_KAFKA_SECURITY_PROTOCOL": "SSL", "VIEWCOUNT_KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem"},
     "VIEWCOUNT_KAFKA_SSL_CA_LOCATION='/nonexistent/ca.pem': no such file (a PEM file of CA certificates "
     "is expected)"),
    ({"VIEWCOUNT_CASSANDRA_USERNAME": "api"},
     "VIEWCOUNT_CASSANDRA_USERNAME and VIEWCOUNT_CASSANDRA_PASSWORD must be set together"),
    ({"VIEWCOUNT_CASSANDRA_SSL_CA": "/nonexistent/ca.pem"},
     "VIEWCOUNT_CASSANDRA_SSL_CA='/nonexistent/ca.pem': no such file (a PEM file of CA certificates is expected)"),
    ({"AWS_CA_BUNDLE": "/nonexistent/ca.pem"},
     "AWS_CA_BUNDLE='/nonexistent/ca.pem': no such file (a PEM file of CA certificates is expected)"),
    ({"VIEWCOUNT_S3_ENDPOINT": "minio.internal:9000"},
     "VIEWCOUNT_S3_ENDPOINT='minio.internal:9000' must start with http:// or https://"),
])
def test_incomplete_or_contradictory_settings_are_refused(env, variables, message):
    with pytest.raises(UserError) as refused:
        env(**variables)
    assert str(refused.value) == message


def test_a_bad_protocol_reaches_the_user_as_one_line(env, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("VIEWCOUNT_KAFKA_SECURITY_PROTOCOL", "SASL-SSL")
    code = cli.main(["produce", "--events", "5", "--oracle", str(tmp_path / "oracle")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("viewcount produce: error: VIEWCOUNT_KAFKA_SECURITY_PROTOCOL='SASL-SSL' is not one of "
                   "PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL\n")


def test_cassandra_gets_a_password_and_a_verifying_tls_context(env, ca_file):
    options = security_options(env(VIEWCOUNT_CASSANDRA_USERNAME="api", VIEWCOUNT_CASSANDRA_PASSWORD=CASSANDRA_SECRET,
                                   VIEWCOUNT_CASSANDRA_SSL_CA=ca_file))
    assert options["auth_provider"].new_authenticator("127.0.0.1").initial_response() == (
        f"\x00api\x00{CASSANDRA_SECRET}".encode())
    context = options["ssl_context"]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "viewcount test CA"),),)]


def test_s3_follows_the_endpoint_scheme_and_the_ca_bundle(env, ca_file):
    keys = {"AWS_ACCESS_KEY_ID": "key-id", "AWS_SECRET_ACCESS_KEY": "key-secret"}
    settings = env(VIEWCOUNT_S3_ENDPOINT="https://s3.internal:9443", AWS_CA_BUNDLE=ca_file, **keys)
    s3 = s3_client(settings)
    assert s3.meta.endpoint_url == "https://s3.internal:9443"
    assert s3._endpoint.http_session._verify == ca_file
    conf = spark_conf(settings, with_connectors=False)
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "https://s3.internal:9443"
    assert s3_client(env(VIEWCOUNT_S3_ENDPOINT="http://127.0.0.1:9000", **keys)).meta.endpoint_url.startswith("http://")
