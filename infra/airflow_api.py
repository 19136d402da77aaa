"""A small client of Airflow's REST API (v2) on httpx, for the Airflow that ``viewcount airflow up``
runs: health, the nightly DAG, its runs and their tasks.

It logs in once with SimpleAuthManager's user and password (``POST /auth/token`` gives a
JWT) and sends the token with every call. Any failure to reach the server, or an answer
that is not what the call needs, is a ``UserError`` of one line naming the URL.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from dataclasses import dataclass, field

import httpx

from settings.errors import UserError

DAG_ID = "viewcount_nightly"
FINISHED = ("success", "failed")  # a DAG run's terminal states


class ApiError(UserError):
    """The API answered with an error status; ``status`` says which."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def run_interval(day: dt.date) -> tuple[str, str]:
    """The data interval [D, D+1) in UTC of the run for day D, as the daily schedule makes it."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
    return start.isoformat(), (start + dt.timedelta(days=1)).isoformat()


@dataclass
class AirflowApi:
    url: str  # the API server's base URL, e.g. http://127.0.0.1:8794
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    token: str | None = field(default=None, repr=False)

    def _request(self, method: str, path: str, body: dict | None = None, *, auth: bool = True):
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token()}"
        try:
            response = httpx.request(method, f"{self.url}{path}", headers=headers, json=body, timeout=self.timeout)
        except httpx.TransportError as error:
            raise UserError(f"the Airflow API at {self.url} is not reachable ({error}): "
                            "start it with `viewcount airflow up`") from None
        if response.is_error:
            detail = response.text[:300].replace("\n", " ")
            raise ApiError(f"Airflow API {method} {path} answered {response.status_code}: {detail}",
                           response.status_code)
        try:
            return response.json() if response.content else None
        except ValueError:
            raise UserError(f"Airflow API {method} {path} answered something that is not JSON") from None

    def _token(self) -> str:
        if self.token is None:
            answer = self._request("POST", "/auth/token", {"username": self.username, "password": self.password},
                                   auth=False)
            self.token = answer["access_token"]
        return self.token

    def health(self) -> dict:
        """``/api/v2/monitor/health``: each component's status (no login needed)."""
        return self._request("GET", "/api/v2/monitor/health", auth=False)

    def dag(self, dag_id: str = DAG_ID) -> dict | None:
        """The DAG as Airflow knows it, or None while its file has not been parsed."""
        try:
            return self._request("GET", f"/api/v2/dags/{dag_id}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def import_errors(self) -> list[str]:
        """The first line of each DAG file that failed to import."""
        errors = self._request("GET", "/api/v2/importErrors").get("import_errors", [])
        return [f"{error['filename']}: {(error['stack_trace'].strip().splitlines() or ['?'])[-1]}"
                for error in errors]

    def unpause(self, dag_id: str = DAG_ID) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, day: dt.date, dag_id: str = DAG_ID) -> dict:
        """A run of day D: logical date D and data interval [D, D+1), like the scheduled one."""
        start, end = run_interval(day)
        return self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                             {"logical_date": start, "data_interval_start": start, "data_interval_end": end})

    def run_of_day(self, day: dt.date, dag_id: str = DAG_ID) -> dict | None:
        """The run whose logical date is D 00:00 UTC, if there is one."""
        start, _ = run_interval(day)
        query = httpx.QueryParams({"logical_date_gte": start, "logical_date_lte": start})
        runs = self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns?{query}")["dag_runs"]
        return runs[0] if runs else None

    def run(self, run_id: str, dag_id: str = DAG_ID) -> dict:
        return self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_states(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, str | None]:
        """Task id -> state of each task instance of the run."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return {ti["task_id"]: ti["state"] for ti in self._request("GET", path)["task_instances"]}

    def rerun(self, run_id: str, dag_id: str = DAG_ID) -> None:
        """Clear every task of the run: the scheduler runs the whole day again."""
        self._request("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                      {"dag_run_id": run_id, "dry_run": False, "only_failed": False, "reset_dag_runs": True})
