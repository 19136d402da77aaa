"""The Airflow home the nightly DAG runs under, shared by ``viewcount nightly`` (``airflow
dags test``, no scheduler) and ``viewcount airflow up`` (scheduler, DAG processor and API
server as processes): one environment, one SQLite metadata database, one place for logs.

The home (VIEWCOUNT_AIRFLOW_HOME, default <run dir>/airflow) holds the metadata database,
migrated once per Airflow version; Airflow's ``airflow.cfg``, which Airflow writes on its
first run with the generated JWT secret every component must share; the task logs; and, for
the deployed processes, their pid files and logs and the API user's password file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

from settings.errors import UserError
from settings.environment import DagKnobs, Settings

log = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parent.parent
API_HOST = "127.0.0.1"  # the API server and the UI listen on loopback only
API_USER = "viewcount"  # SimpleAuthManager's one user, an admin
PASSWORDS_FILE = "simple_auth_manager_passwords.json"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def api_url(knobs: DagKnobs) -> str:
    """The base URL of the API server ``viewcount airflow up`` starts (UI, REST API, task API)."""
    return f"http://{API_HOST}:{knobs.airflow_api_port}"


def airflow_environment(settings: Settings, knobs: DagKnobs, spark_master: str | None = None) -> dict[str, str]:
    """The environment the DAG runs under: the caller's, plus a private Airflow home
    (VIEWCOUNT_AIRFLOW_HOME, default <run dir>/airflow) and, for the deployed processes,
    the API server's address and its authentication. The variables set here win over the
    caller's: a shell that exports one cannot move the home or switch the login off."""
    home = knobs.nightly_airflow_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    connection = {"conn_type": "spark", "host": spark_master or settings.spark.spark_master,
                  "extra": {"deploy-mode": "client"}}
    url = api_url(knobs)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW_CONN_VIEWCOUNT_SPARK": json.dumps(connection),
        # The deployed processes: tasks run by the scheduler's LocalExecutor report to the
        # API server's task API; REST clients log in as API_USER with the password in the home.
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # The executor forks this many workers when it starts (32 by default, over 100 MB
        # each); the DAG runs one task at a time and one run at a time.
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / PASSWORDS_FILE),
        # Switched on, SimpleAuthManager makes every request an admin's, with no password:
        # anyone on the machine could trigger, clear or delete runs. An environment variable
        # outranks airflow.cfg and its _CMD / _SECRET forms, so pinned here it stays off.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": url.rsplit(":", 1)[1],
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
    }


def airflow_command() -> str:
    return str(Path(sys.executable).parent / "airflow")


def start_airflow(env: dict[str, str], *args: str, log: Path):
    """``airflow ARGS`` with its output piped back, and the log file it is copied to."""
    process = subprocess.Popen([airflow_command(), *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1, cwd=env["AIRFLOW_HOME"])
    return process, log.open("a")


def ensure_metadata_db(env: dict[str, str], migrate_log: Path) -> None:
    """``airflow db migrate`` once per Airflow version; later runs find the marker and skip it."""
    from importlib.metadata import version

    marker = Path(env["AIRFLOW_HOME"]) / f"migrated-{version('apache-airflow')}"
    if marker.exists():
        return
    log.info("airflow: migrating the metadata database (first run only)")
    process, handle = start_airflow(env, "db", "migrate", log=migrate_log)
    with handle:
        for line in process.stdout:
            handle.write(line)
    if process.wait() != 0:
        raise UserError(f"`airflow db migrate` failed; see {migrate_log}")
    marker.touch()


def ensure_api_password(env: dict[str, str]) -> Path:
    """The API user's password file, written once (readable by its owner only): Airflow's
    SimpleAuthManager reads it, REST clients log in with it. Generated here, not by Airflow,
    so that Airflow never prints the password into a log."""
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(descriptor, "w") as out:
        out.write(json.dumps({API_USER: secrets.token_urlsafe(18)}) + "\n")
    return path


def api_password(home: Path) -> str:
    """API_USER's password from the home's password file."""
    path = home / PASSWORDS_FILE
    try:
        return json.loads(path.read_text())[API_USER]
    except (OSError, ValueError, KeyError):
        raise UserError(f"no Airflow API password in {path}: start Airflow with `viewcount airflow up`") from None
