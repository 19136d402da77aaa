"""A local Spark driver maps the class-data archive `stack up` built, beside a user's own
driver options."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

# A fresh driver (a session already open in this process would keep its JVM's options).
DRIVER = """
import json
from settings.environment import Settings
from spark_runtime.session import build_session
spark = build_session("test-class-archive", Settings.from_env(),
                      extra_conf={"spark.driver.extraJavaOptions": "-Dviewcount.test=user"})
runtime = spark._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
print(json.dumps(list(runtime.getInputArguments())))
"""


def test_a_local_driver_runs_with_the_archive_and_the_users_own_options(stack):
    from spark_runtime.class_data import class_archive

    archive = class_archive(stack)
    assert archive.is_file(), "stack up did not build the class-data archive"
    output = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, text=True, timeout=300)
    assert output.returncode == 0, output.stderr[-3000:]
    arguments = json.loads(output.stdout.strip().splitlines()[-1])
    assert f"-XX:SharedArchiveFile={archive}" in arguments
    assert "-Dviewcount.test=user" in arguments
    assert "Unable to use shared archive" not in output.stdout + output.stderr
