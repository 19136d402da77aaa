"""Start-up of a local Spark driver with and without the class-data archive, in turn.

Each round starts two fresh Python processes one after the other, each building the
session every job builds (``spark_runtime.session.build_session``: local[2], the connector jars)
and running one small aggregation: one with the archive ``spark_runtime.class_data`` built
(`viewcount stack up` / `make artifacts`), the reference with it turned off
(``spark.driver.defaultJavaOptions`` empty). Prints the session and first-job times of
each, and the ratio of the totals, per round and for the median. A round whose archive
option is not where it belongs, or whose two first jobs disagree, stops the run (exit
status 1). ``make test`` runs one round (tests/integration/test_bench_smoke.py).

    .venv/bin/python bench/spark_startup.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import json, sys, time
began = time.monotonic()
from settings.environment import Settings
from spark_runtime.session import build_session
extra = {} if sys.argv[1] == "archive" else {"spark.driver.defaultJavaOptions": ""}
spark = build_session("bench-startup", Settings.from_env(), extra_conf=extra)
session = time.monotonic()
rows = spark.range(200_000).selectExpr("id % 100 AS k").groupBy("k").count().collect()
print(json.dumps({"session": session - began, "job": time.monotonic() - session,
                  "result": sorted((row.k, row["count"]) for row in rows),
                  "options": spark.sparkContext.getConf().get("spark.driver.defaultJavaOptions", "")}))
"""


def _one(mode: str) -> dict:
    output = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    from settings.environment import Settings
    from spark_runtime.class_data import class_archive

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    archive = class_archive(Settings.from_env())
    if not archive.is_file():
        sys.exit(f"no class-data archive at {archive}: run `make artifacts` (or `viewcount stack up`) first")
    ratios = []
    for number in range(1, args.rounds + 1):
        ours, reference = _one("archive"), _one("reference")
        if "SharedArchiveFile" not in ours["options"] or "SharedArchiveFile" in reference["options"]:
            sys.exit("the archive option was not where it belongs; nothing measured")
        if ours["result"] != reference["result"] or len(ours["result"]) != 100:
            sys.exit("the two drivers' first jobs gave different results; nothing measured")
        ratio = (ours["session"] + ours["job"]) / (reference["session"] + reference["job"])
        ratios.append(ratio)
        print(f"round {number}: archive session {ours['session']:.1f} s + first job {ours['job']:.1f} s; "
              f"without session {reference['session']:.1f} s + first job {reference['job']:.1f} s; "
              f"ratio {ratio:.2f}", flush=True)
    print("the archive option only in the archive's driver, the same first-job result in both: agree")
    print(f"median ratio (archive / without) over {args.rounds} rounds: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
