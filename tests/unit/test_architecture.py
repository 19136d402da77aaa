"""DESIGN's layer rules, checked on the source: arrows only point down the layer table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"counting", "settings", "storage", "spark_runtime", "speed_layer", "batch_layer", "serving",
        "reconcile", "dags", "infra", "producer", "oracle", "demo", "capacity", "viewcount", "bench", "tests"}
SPARK_LAYER = {"counting", "settings", "storage", "spark_runtime"}
MAY_IMPORT = {
    "counting": set(),
    "settings": set(),
    "storage": {"counting", "settings"},
    "spark_runtime": {"counting", "settings"},
    "speed_layer": SPARK_LAYER,
    "batch_layer": SPARK_LAYER,
    "serving": {"settings", "storage"},
    "reconcile": SPARK_LAYER,
    "infra": {"settings", "storage", "spark_runtime"},
    "producer": {"counting", "settings", "storage"},
    # Independent of counting/ on purpose: only its reason codes and limits.
    "oracle": {"counting"},
    "capacity": {"settings"},
    # The command line hands off to every layer and tool (by module name, see viewcount.cli);
    # the demo drives the command line.
    "viewcount": OURS - {"demo", "dags", "bench", "tests"},
    "demo": OURS - {"dags", "bench", "tests"},
}
# counting/ is pure: no I/O, no clients, no clock.
IMPURE = {"os", "io", "time", "socket", "subprocess", "boto3", "cassandra", "kafka",
          "confluent_kafka", "requests", "urllib", "pathlib"}
# Calls that read a clock, whatever they are imported as: datetime's now/utcnow/today,
# Spark's current_timestamp/current_date/localtimestamp/now/curdate.
CLOCK_CALLS = {"now", "utcnow", "today", "current_timestamp", "current_date", "localtimestamp", "curdate"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def clock_calls(source: str) -> list[str]:
    """``line: name()`` for every call of a clock in ``source`` (``dt.datetime.now()``,
    ``F.current_timestamp()``, a bare ``now()``, ...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name in CLOCK_CALLS:
                found.append(f"{node.lineno}: {name}()")
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports_where(package: str, is_forbidden) -> set[str]:
    return {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources(package)
        for name in imported_modules(path)
        if is_forbidden(name)
    }


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_layer_imports_only_what_design_allows(package):
    forbidden = OURS - {package} - MAY_IMPORT[package]
    assert not imports_where(package, lambda name: name.split(".")[0] in forbidden)


def test_counting_does_no_io():
    assert not imports_where("counting", lambda name: name.split(".")[0] in IMPURE)


def test_counting_parses_no_command_line():
    """counting/'s parsers (a day, a duration) raise ValueError; the command line's edge
    turns that into its usage error (``settings.errors.argument_type``)."""
    assert not imports_where("counting", lambda name: name.split(".")[0] == "argparse")


def test_counting_reads_no_clock():
    assert not {f"{path.relative_to(ROOT)}:{call}" for path in sources("counting")
                for call in clock_calls(path.read_text())}


@pytest.mark.parametrize("source", [
    "import datetime as dt\ncutoff = dt.datetime.now(dt.timezone.utc)\n",
    "from datetime import datetime\ndef f():\n    return datetime.utcnow()\n",
    "import datetime\nday = datetime.date.today()\n",
    "from pyspark.sql import functions as F\ncolumn = F.current_timestamp()\n",
    "from pyspark.sql.functions import now\ncolumn = now()\n",
])
def test_the_clock_check_sees_a_clock_call(source):
    assert clock_calls(source)


def test_the_clock_check_passes_time_given_as_an_argument():
    assert not clock_calls("def is_over(cutoff, now):\n    return now >= cutoff\n")


# The bounds of day D and of its window of arrivals (``counting.window.BatchWindow``).
WINDOW_BOUNDS = {"day_start", "day_end", "start", "cutoff"}


def window_bound_literals(source: str) -> list[str]:
    """``line: lit(….bound)`` for every Spark literal of a window bound: a comparison that
    decides which records or events count for a day."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and (getattr(node.func, "attr", None) or getattr(node.func, "id", None)) == "lit":
            for argument in node.args:
                if isinstance(argument, ast.Attribute) and argument.attr in WINDOW_BOUNDS:
                    found.append(f"{node.lineno}: lit(….{argument.attr})")
    return found


def test_the_day_rule_has_one_home():
    """Which events count for D is written once, in counting/day.py; the batch, the
    evidence and the quality checks use it."""
    packages = sorted(OURS - {"tests", "bench"})
    assert not {f"{path.relative_to(ROOT)}:{found}" for package in packages for path in sources(package)
                if path != ROOT / "counting" / "day.py" for found in window_bound_literals(path.read_text())}


def test_the_day_rule_check_sees_a_rewritten_rule():
    assert window_bound_literals("in_day = F.col('event_time') < F.lit(window.day_end)\n")
    assert window_bound_literals("from pyspark.sql.functions import lit\nlate = arrival >= lit(w.cutoff)\n")
    assert not window_bound_literals("late = arrived_past_cutoff(window, arrival)\n")


ORDERINGS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def lateness_comparisons(source: str) -> list[str]:
    """``line: comparison`` for every ordering comparison against a late watermark: the
    test of whether the speed layer dropped an event as late."""
    return [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Compare) and any(isinstance(op, ORDERINGS) for op in node.ops)
            and "late_watermark" in ast.unparse(node)]


def test_the_lateness_rule_has_one_home():
    """Whether the speed layer dropped an event as late is written once, in
    counting/views.py (``is_dropped_as_late``); the reconciler's evidence uses it."""
    packages = sorted(OURS - {"tests", "bench"})
    assert not {f"{path.relative_to(ROOT)}:{found}" for package in packages for path in sources(package)
                if path != ROOT / "counting" / "views.py" for found in lateness_comparisons(path.read_text())}


def test_the_lateness_rule_check_sees_a_rewritten_rule():
    assert lateness_comparisons("is_late = F.col('event_time_us') <= F.col('late_watermark_ms') * 1000\n")
    assert lateness_comparisons("late = batch.late_watermark_ms >= event_time_ms\n")
    assert not lateness_comparisons("is_late = is_dropped_as_late(event_time_us, F.col('late_watermark_ms'))\n")


def test_serving_never_imports_spark():
    assert not imports_where("serving", lambda name: name.split(".")[0] in ("pyspark", "spark_runtime"))


def test_the_check_sees_a_forbidden_import():
    assert imports_where("speed_layer", lambda name: name == "spark_runtime.session")
    assert not imports_where("speed_layer", lambda name: name.split(".")[0] in {"serving", "batch_layer"})


def test_pinned_spark_version_matches_installed_pyspark():
    import pyspark

    from settings.environment import SPARK_VERSION

    assert pyspark.__version__ == SPARK_VERSION


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (at the top or inside a function)."""
    paths = [path for package in OURS - {"tests", "bench", "dags"} for path in sources(package)]
    modules = {module_name(path): path for path in paths}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(path):
            # ``from a.b import c`` may name the module a.b.c or a name defined in a.b.
            candidates = [imported] + [imported.rsplit(".", 1)[0]] * ("." in imported)
            targets.update(candidate for candidate in candidates if candidate in modules)
        graph[name] = targets - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected set of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    assert circles(import_graph()) == []


def test_the_circle_check_sees_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


# CQL lives in storage/, each table's statements in its module. Elsewhere a CQL statement is
# a string that starts with a statement's verb and names a table of the Cassandra schema
# (its migrations), a system table or a table given at run time (``{}`` of an f-string); a
# keyspace, a batch or a USE is CQL whatever it names. DuckDB's SQL (benches) names none of
# these tables; docstrings and prose name no table after a verb.
SCHEMA_TABLES = {"schema_migrations"} | {
    match.group(1)
    for path in (ROOT / "storage" / "migrations").glob("*.cql")
    for match in re.finditer(r"CREATE TABLE IF NOT EXISTS (?:\{keyspace\}\.)?(\w+)", path.read_text())
}
TABLE = r"([\w.{}\"]+)"
TABLE_STATEMENT = re.compile(
    r"\s*(?:SELECT\s.*?\sFROM\s+" + TABLE + r"|INSERT\s+INTO\s+" + TABLE
    + r"|UPDATE\s+" + TABLE + r"\s+(?:SET|USING)\s|DELETE\b.*?\bFROM\s+" + TABLE
    + r"|TRUNCATE\s+(?:TABLE\s+)?" + TABLE
    + r"|(?:CREATE|ALTER|DROP)\s+(?:TABLE|INDEX|TYPE|MATERIALIZED\s+VIEW)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?" + TABLE
    + ")", re.IGNORECASE | re.DOTALL)
CQL_ONLY_STATEMENT = re.compile(
    r"\s*(?:(?:CREATE|ALTER|DROP)\s+KEYSPACE\s|BEGIN\s+(?:UNLOGGED\s+|COUNTER\s+)?BATCH\s"
    r"|USE\s+[\w{}\"]+\s*;?\s*$)", re.IGNORECASE | re.DOTALL)


def is_cql(text: str) -> bool:
    if CQL_ONLY_STATEMENT.match(text):
        return True
    statement = TABLE_STATEMENT.match(text)
    if statement is None:
        return False
    named = next(group for group in statement.groups() if group).strip('"')
    return "{" in named or named.lower().startswith("system") or named.rsplit(".", 1)[-1] in SCHEMA_TABLES


def cql_statements(source: str) -> list[str]:
    """``line: statement`` for every CQL statement in a string of ``source`` (an f-string's
    values read as ``{}``); a string standing alone as a statement (a docstring) is prose."""
    tree = ast.parse(source)
    skipped = {id(node.value) for node in ast.walk(tree)
               if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    skipped |= {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skipped:
            text = node.value
        else:
            continue
        if is_cql(text):
            found.append(f"{node.lineno}: {' '.join(text.split())[:60]}")
    return found


def test_cql_lives_in_storage():
    packages = sorted(OURS - {"storage"})
    assert not {f"{path.relative_to(ROOT)}:{found}" for package in packages for path in sources(package)
                for found in cql_statements(path.read_text())}


@pytest.mark.parametrize("source", [
    'rows = session.execute("SELECT minute, views FROM speed_minute_views WHERE video_id = %s", (video,))\n',
    'session.execute(f"DELETE FROM {table} WHERE day = %s", (day,))\n',
    'INSERT = (f"INSERT INTO {keyspace}.batch_promotions (day, version)"\n          " VALUES (?, ?)")\n',
    'session.execute("UPDATE speed_minute_views SET views = 0 WHERE video_id = %s", (video,))\n',
    'session.execute(f"DROP KEYSPACE IF EXISTS {settings.keyspace}")\n',
    'session.execute("SELECT files FROM system_views.pending_hints")\n',
    'session.execute("truncate table reconciliations")\n',
    'statement = "BEGIN UNLOGGED BATCH " + body\n',
    'session.execute(f"CREATE TABLE IF NOT EXISTS {keyspace}.cells (video_id text PRIMARY KEY)")\n',
])
def test_the_cql_check_sees_a_cql_statement(source):
    assert cql_statements(source)


@pytest.mark.parametrize("source", [
    'def read(session):\n    """Select the views from speed_minute_views, one day at a time."""\n',
    'help = "update the catalog from a CSV file"\n',
    'divergent = duckdb.sql("SELECT count(*) FROM divergent WHERE delta <> 0")\n',
    'note = "Delete from the archive only what the reconciler proved"\n',
    'query = counts.writeStream.outputMode("update")\n',
    'print(f"update {count} answered")\n',
])
def test_the_cql_check_passes_prose_and_other_sql(source):
    assert not cql_statements(source)


# Where settings are read from the environment: the command line, the DAG, the demo, and in
# the layers only a command's ``run``, a spark-submit entry's ``main`` and the API's app
# factory. Everything below them is handed its settings.
EDGE_PACKAGES = {"viewcount", "dags", "demo", "settings", "bench", "tests"}
EDGE_FUNCTIONS = {"run", "main", "app_from_env"}


def environment_readings(source: str) -> list[str]:
    """``line: function`` of each ``….from_env()`` call outside an edge function."""
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        elif isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            function = "main"
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_env"
                and function not in EDGE_FUNCTIONS):
            found.append(f"{node.lineno}: {function or 'module level'}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), None)
    return found


def test_settings_are_read_only_at_the_edges():
    packages = sorted(OURS - EDGE_PACKAGES)
    assert not {f"{path.relative_to(ROOT)}:{found}" for package in packages for path in sources(package)
                for found in environment_readings(path.read_text())}


def test_the_edge_check_sees_a_reading_below_the_edge():
    assert environment_readings("def promote(day, settings=None):\n    settings = settings or Settings.from_env()\n")
    assert environment_readings("KNOBS = DagKnobs.from_env()\n")
    assert not environment_readings("def run(args):\n    return promote(args.day, Settings.from_env())\n")
    assert not environment_readings("if __name__ == '__main__':\n    train(Settings.from_env())\n")


def environment_writes(source: str) -> list[str]:
    """``line: what`` of each change to this process's environment (a value passed on that
    way instead of as an argument); a child's own ``env=`` is not one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (owner, node.func.attr) in {("os.environ", "update"), ("os.environ", "setdefault"),
                                           ("os.environ", "pop"), ("os", "putenv"), ("os", "unsetenv")}:
                found.append(f"{node.lineno}: {owner}.{node.func.attr}")
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else []
        for target in targets:
            if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "os.environ":
                found.append(f"{node.lineno}: os.environ[...]")
    return found


def test_no_layer_passes_a_value_through_the_environment():
    packages = sorted(OURS - {"tests", "bench"})
    assert not {f"{path.relative_to(ROOT)}:{found}" for package in packages for path in sources(package)
                for found in environment_writes(path.read_text())}


def test_the_environment_check_sees_a_write():
    assert environment_writes("import os\nos.environ['VIEWCOUNT_KEYSPACE'] = 'demo'\n")
    assert environment_writes("import os\nos.environ.setdefault('PYSPARK_PYTHON', 'python')\n")
    assert not environment_writes("import os, subprocess\nsubprocess.run(['x'], env={**os.environ, 'A': '1'})\n")


# Reads that only pass the caller's own value on to a child process's environment.
CHILD_ENVIRONMENT = {("infra/airflow_home.py", "PATH"), ("infra/airflow_home.py", "PYTHONPATH")}


def environment_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable or '?') of each read of os.environ / os.getenv in ``source``;
    ``{**os.environ, ...}`` (a child's environment) and writes are not reads."""
    reads = []
    for node in ast.walk(ast.parse(source)):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if (owner, node.func.attr) in (("os.environ", "get"), ("os", "getenv"), ("environ", "get")):
                target = node.args[0] if node.args else None
            else:
                continue
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                and ast.unparse(node.value) in ("os.environ", "environ"):
            target = node.slice
        elif isinstance(node, ast.Compare) and any(ast.unparse(c) in ("os.environ", "environ")
                                                   for c in node.comparators):
            target = node.left
        else:
            continue
        name = target.value if isinstance(target, ast.Constant) else "?"
        reads.append((node.lineno, name))
    return reads


def test_only_settings_reads_the_environment():
    reads = {
        f"{path.relative_to(ROOT)}:{line} reads {name}"
        for package in sorted(OURS - {"settings", "bench", "tests"}) for path in sources(package)
        for line, name in environment_reads(path.read_text())
        if (str(path.relative_to(ROOT)), name) not in CHILD_ENVIRONMENT
    }
    assert reads == set()


@pytest.mark.parametrize("source", [
    "import os\nmaster = os.environ.get('VIEWCOUNT_SPARK_MASTER', 'local[2]')\n",
    "import os\nmaster = os.getenv('VIEWCOUNT_SPARK_MASTER')\n",
    "import os\nhome = os.environ['VIEWCOUNT_HOME']\n",
    "import os\nunder_submit = 'PYSPARK_GATEWAY_PORT' in os.environ\n",
])
def test_the_environment_check_sees_a_read(source):
    assert environment_reads(source)


def test_a_child_environment_and_writes_are_not_reads():
    source = ("import os\nenv = {**os.environ, 'A': '1'}\nos.environ.setdefault('B', '2')\n"
              "os.environ['C'] = '3'\nos.environ.update(env)\n")
    assert environment_reads(source) == []
