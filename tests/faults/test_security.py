"""Security of what runs locally: servers on loopback only, no secret in the repository,
and an HTTP API with nothing to mutate (so no endpoint that would need a credential)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.ports import is_loopback, listening_addresses
from tests.support.serve import serve_running

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


def test_the_proc_reader_sees_wildcard_and_loopback_listeners():
    with socket.socket() as wild, socket.socket() as local:
        wild.bind(("0.0.0.0", 0))
        local.bind(("127.0.0.1", 0))
        wild.listen()
        local.listen()
        found = listening_addresses(os.getpid())
        assert ("0.0.0.0", wild.getsockname()[1]) in found
        assert ("127.0.0.1", local.getsockname()[1]) in found
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("::1") and is_loopback("127.0.0.1")


def test_every_local_server_listens_on_loopback_only(stack):
    from infra.servers import all_servers
    from infra.stack import running_pid

    for server in all_servers(stack):
        pid = running_pid(server)
        if pid is None:
            pytest.fail(f"{server.name} is not running (another test stopping it? check `viewcount stack status`)")
        addresses = listening_addresses(pid)
        # The server's own port proves the sockets were found, not merely that none were.
        assert server.ports()[0][1] in {port for _, port in addresses}, (server.name, addresses)
        wild = sorted(address for address in addresses if not is_loopback(address[0]))
        assert not wild, f"{server.name} (pid {pid}) listens beyond loopback: {wild}"


@pytest.fixture(scope="module")
def served(stack, tmp_path_factory):
    """``viewcount serve`` with its default host, on a free port: (url, process)."""
    with serve_running(tmp_path_factory.mktemp("serve") / "serve.log") as (url, server, _):
        yield url, server


def test_serve_binds_loopback_by_default(served):
    from viewcount.cli import build_parser

    assert build_parser("serve").parse_args(["serve"]).host == "127.0.0.1"
    url, server = served
    port = int(url.rsplit(":", 1)[1])
    assert listening_addresses(server.pid) == {("127.0.0.1", port)}


# --- secrets in the repository ----------------------------------------------------------

AWS_ACCESS_KEY = re.compile(rb"AKIA[0-9A-Z]{16}")
PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----")


def repository_files() -> list[Path]:
    """Tracked files and new ones not ignored: what a commit could publish."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def secrets_in(files: list[Path], values: set[str]) -> list[str]:
    literals = [re.compile(re.escape(value.encode())) for value in values]
    found = []
    for path in files:
        content = path.read_bytes()
        for pattern in (AWS_ACCESS_KEY, PRIVATE_KEY, *literals):
            if pattern.search(content):
                found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                             f"{'a configured secret' if pattern in literals else pattern.pattern.decode()}")
    return found


def configured_secrets(settings) -> set[str]:
    from settings.environment import CREDENTIALS_FILE

    path = settings.run_dir / CREDENTIALS_FILE
    values = set()
    if path.is_file():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values.add(value.strip())
    values.update(value for value in (settings.aws_access_key_id, settings.aws_secret_access_key,
                                      settings.kafka_sasl_password, settings.cassandra_password) if value)
    return {value for value in values if len(value) >= 8}


def test_the_scan_finds_each_kind_of_secret(tmp_path):
    planted = {
        "key.txt": b"aws_access_key_id = AKIA" + b"ABCDEFGHIJKLMNOP\n",
        "id.pem": b"-----BEGIN RSA " + b"PRIVATE KEY-----\nMIIE\n",
        "ok.txt": b"nothing here AKIAshort\n",
        "env.txt": b"password: local-minio-secret-value\n",
    }
    for name, content in planted.items():
        (tmp_path / name).write_bytes(content)
    found = secrets_in(sorted(tmp_path.iterdir()), {"local-minio-secret-value"})
    assert sorted(line.split(":")[0] for line in found) == [str(tmp_path / n) for n in ("env.txt", "id.pem", "key.txt")]


def test_no_secret_is_in_the_repository(stack):
    values = configured_secrets(stack)
    assert values, "no local credentials found to look for (is credentials.env or AWS_* set?)"
    files = repository_files()
    assert len(files) > 50 and ROOT / "README.md" in files
    assert secrets_in(files, values) == []


# --- the HTTP API mutates nothing -------------------------------------------------------

SAMPLE_PARAMETERS = {"video_id": "video-1", "day": "2026-11-25"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: SAMPLE_PARAMETERS.get(match.group(1), "x"), path)


def test_every_route_of_the_app_is_read_only(stack):
    from serving.limits import Limits
    from settings.environment import ServingKnobs
    from serving.main import create_app
    from serving.store import ViewStore

    app = create_app(ViewStore(stack, Limits.from_knobs(ServingKnobs.from_env())))
    methods = {route.path: set(getattr(route, "methods", None) or ()) for route in app.routes}
    assert "/v1/top" in methods and len(methods) >= 7
    writable = {path: sorted(verbs - {"GET", "HEAD"}) for path, verbs in methods.items() if verbs - {"GET", "HEAD"}}
    assert writable == {}


def test_openapi_lists_only_reads_and_every_write_is_refused_with_json(served):
    url, _ = served
    paths = httpx.get(url + "/openapi.json", timeout=10).json()["paths"]
    assert {"/v1/top", "/v1/videos/{video_id}/views", "/healthz"} <= set(paths)
    operations = {path: sorted(verbs) for path, verbs in paths.items()}
    assert {path: verbs for path, verbs in operations.items() if set(verbs) - {"get", "head"}} == {}

    # Routes outside the schema too: the metrics scrape and the documentation pages.
    for path in [*paths, "/metrics", "/openapi.json", "/docs", "/redoc"]:
        for method in MUTATING:
            answer = httpx.request(method, url + concrete(path), timeout=10)
            assert answer.status_code == 405, (method, path, answer.status_code, answer.text)
            assert answer.headers["content-type"].startswith("application/json"), (method, path)
            assert "error" in answer.json(), (method, path, answer.text)


PROBE = """
import sys, time
from pathlib import Path
from settings.environment import Settings
from spark_runtime.session import build_session
spark = build_session("loopback-probe", Settings.from_env(), short_lived=True)
print("ready", flush=True)
deadline = time.monotonic() + 300
while not Path(sys.argv[1]).exists() and time.monotonic() < deadline:  # spark-submit keeps stdin
    time.sleep(0.2)
spark.stop()
"""


def test_a_local_driver_started_by_spark_submit_listens_on_loopback_only(stack, tmp_path):
    """The nightly's batch runs under spark-submit, where the Python side cannot tell the
    master before the session exists: the driver's loopback binding comes with the
    options `spark_runtime.session.submit_options` gives a local master, whatever the host's name
    resolves to."""
    from spark_runtime.session import submit_options

    options = submit_options(stack, "local[1]", short_lived=True)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_SUBMIT_OPTS": options["driver_java_options"]}
    # A host whose name resolves to its network address (most servers; this machine's name
    # resolves to loopback): Spark's own default would bind there.
    network = [address for address in subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
               if not is_loopback(address) and ":" not in address]
    if network:
        env["SPARK_LOCAL_IP"] = network[0]
    submit = subprocess.Popen([str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]",
                               "--driver-class-path", options["driver_class_path"], str(probe), str(tmp_path / "done")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert submit.stdout.readline().strip() == "ready"
        addresses = listening_addresses(submit.pid)
        assert addresses, "the driver's listeners were not found"
        wild = sorted(address for address in addresses if not is_loopback(address[0]))
        assert not wild, f"the spark-submit driver listens beyond loopback: {wild}"
    finally:
        (tmp_path / "done").touch()
        submit.wait(timeout=120)
