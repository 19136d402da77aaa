"""Airflow as deployed: the scheduler, the DAG processor and the API server as separate
processes over the nightly DAG's Airflow home (``infra.airflow_home``), started and stopped
like the stack's servers (``infra.stack``: pid files, a marker on the command line, a new
session each, logs appended per start).

Everything lives in the Airflow home: the SQLite metadata database, ``<name>.pid`` and
``<name>.log`` of each process, the task logs under ``logs/``. The API server (UI, REST
API, and the task API the scheduler's LocalExecutor reports to) listens on 127.0.0.1 only;
the scheduler starts without its log server, as every task log is a local file the API
server reads itself. ``up`` is idempotent and returns once Airflow's health endpoint shows
the scheduler and the DAG processor healthy and the nightly DAG is parsed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from infra.airflow_api import DAG_ID, AirflowApi
from infra.airflow_home import (
    API_HOST, API_USER, PASSWORDS_FILE, airflow_command, api_password, ensure_api_password, ensure_metadata_db,
)
from infra.servers import Server
from infra.stack import ServerStatus, running_pid, start_servers, stop_servers
from settings.errors import UserError
from settings.environment import Settings

DAG_PARSE_TIMEOUT = 180.0


log = logging.getLogger(__name__)


class AirflowProcess(Server):
    """One Airflow component, run as ``airflow <component>`` in the Airflow home."""

    def __init__(self, name: str, settings: Settings, env: dict[str, str], start_timeout: float = 180.0):
        super().__init__(name, settings, start_timeout=start_timeout)
        self.env = env

    @property
    def home(self) -> Path:
        return Path(self.env["AIRFLOW_HOME"])

    def api(self) -> AirflowApi:
        return AirflowApi(self.env["AIRFLOW__API__BASE_URL"], timeout=3.0)

    def component_status(self, component: str) -> str | None:
        """What the health endpoint says of a component; None when the API does not answer."""
        try:
            return (self.api().health().get(component) or {}).get("status")
        except UserError:
            return None

    def ports(self) -> list[tuple[str, int]]:
        return []

    def describe_port(self) -> str:
        return "-"

    def command(self) -> tuple[list[str], dict[str, str]]:
        # In the foreground Airflow ignores --pid: the pid file's path only marks the process
        # as this home's on its command line (``marker``).
        return [airflow_command(), self.name, *self.arguments(), "--pid", str(self.pid_path)], self.env

    def arguments(self) -> list[str]:
        return []


class Scheduler(AirflowProcess):
    def __init__(self, settings: Settings, env: dict[str, str]):
        super().__init__("scheduler", settings, env)

    def arguments(self) -> list[str]:
        return ["--skip-serve-logs"]  # no log server on 0.0.0.0:8793: task logs are local files

    def is_healthy(self) -> bool:
        return self.component_status("scheduler") == "healthy"


class DagProcessor(AirflowProcess):
    def __init__(self, settings: Settings, env: dict[str, str]):
        super().__init__("dag-processor", settings, env)

    def is_healthy(self) -> bool:
        return self.component_status("dag_processor") == "healthy"


class ApiServer(AirflowProcess):
    def __init__(self, settings: Settings, env: dict[str, str]):
        super().__init__("api-server", settings, env)
        self.port = int(env["AIRFLOW__API__PORT"])

    @property
    def title(self) -> str:
        """The command line the API server gives itself once it has started."""
        return f"airflow api_server -- host:{API_HOST} port:{self.port}"

    def owns(self, cmdline: str) -> bool:
        # Before it takes its title, its command line still names this home (the pid path).
        return super().owns(cmdline) or self.title in cmdline

    def ports(self) -> list[tuple[str, int]]:
        return [(API_HOST, self.port)]

    def describe_port(self) -> str:
        return self.env["AIRFLOW__API__BASE_URL"]

    def arguments(self) -> list[str]:
        return ["--host", API_HOST, "--port", str(self.port), "--workers", "1"]

    def is_healthy(self) -> bool:
        return self.component_status("metadatabase") == "healthy"


def airflow_processes(settings: Settings, env: dict[str, str]) -> list[AirflowProcess]:
    return [ApiServer(settings, env), Scheduler(settings, env), DagProcessor(settings, env)]


def client(env: dict[str, str]) -> AirflowApi:
    """A logged-in client of the API server of this Airflow home."""
    return AirflowApi(env["AIRFLOW__API__BASE_URL"], API_USER, api_password(Path(env["AIRFLOW_HOME"])))


def up(settings: Settings, env: dict[str, str]) -> None:
    began = time.monotonic()
    home = Path(env["AIRFLOW_HOME"])
    ensure_metadata_db(env, home / "db-migrate.log")
    ensure_api_password(env)
    start_servers(airflow_processes(settings, env))
    _wait_for_dag(client(env))
    log.info(f"airflow up in {time.monotonic() - began:.1f} s: UI and REST API at {env['AIRFLOW__API__BASE_URL']} "
             f"(user {API_USER}, password in {home / PASSWORDS_FILE})")


def _wait_for_dag(api: AirflowApi) -> None:
    """Until the DAG processor has parsed the nightly DAG; its import error if it cannot."""
    started = time.monotonic()

    def parsed() -> dict | None:
        dag = api.dag()
        if dag is None and (errors := api.import_errors()):
            raise UserError(f"{DAG_ID} did not import: {errors[0][:300]}")
        return dag

    try:
        dag = Retrying(retry=retry_if_result(lambda dag: dag is None), stop=stop_after_delay(DAG_PARSE_TIMEOUT),
                       wait=wait_fixed(1.0))(parsed)
    except RetryError:
        raise UserError(f"the DAG processor did not parse {DAG_ID} within {DAG_PARSE_TIMEOUT:.0f} s; "
                        "see dag-processor.log in the Airflow home") from None
    state = "paused" if dag["is_paused"] else "unpaused"
    log.info(f"  {DAG_ID} parsed after {time.monotonic() - started:4.1f} s ({state})")


def down(settings: Settings, env: dict[str, str], timeout: float = 60.0) -> None:
    """Stop the processes ``up`` started: only pids from our pid files that carry our marker."""
    stop_servers(airflow_processes(settings, env), timeout=timeout)


def status(settings: Settings, env: dict[str, str]) -> list[ServerStatus]:
    result = []
    for process in airflow_processes(settings, env):
        pid = running_pid(process)
        result.append(ServerStatus(process.name, pid, process.describe_port(), pid is not None and process.is_healthy(),
                                   process.log_path))
    return result


def running(settings: Settings, env: dict[str, str]) -> list[str]:
    """The names of this home's processes that run."""
    return [process.name for process in airflow_processes(settings, env) if running_pid(process) is not None]
