"""The read-only SQL endpoint: useful queries work, hostile ones are refused before anything runs,
queries that run too long or take too much memory are stopped in their worker process, and the
DuckDB connection itself can read nothing but the one resource file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from kaifang.app import Platform
from kaifang.datastore import sql_worker
from kaifang.datastore.sql import ALLOWED_FUNCTIONS, SqlLimits, check_sql, run_sql
from kaifang.datastore.sql_worker import WORKERS, open_connection
from tests.conftest import Factory, assert_error, login, pass_review

CSV = (
    "站点名称,区,PM2.5,监测日期,是否达标,记录时间,备注\n"
    "和平站,和平区,35,2026-11-01,是,2026-11-01 08:00:00,\n"
    "河西站,河西区,58.5,2026-11-01,否,2026-11-01 09:30:00,偏高\n"
    "南开站,南开区,41,2026-11-02,是,2026-11-02 08:00:00,正常\n"
    "和平二站,和平区,22,2026-11-02,是,2026-11-02 10:00:00,\n"
).encode()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def publish(client: TestClient, platform: Platform, key: str, entry_id: int, content: bytes = CSV) -> int:
    response = client.post(
        f"/api/v1/datasets/{entry_id}/resources",
        headers=auth(key),
        files={"file": ("空气质量.csv", content, "text/csv")},
    )
    assert response.status_code == 202, response.text
    rid = int(response.json()["id"])
    platform.jobs.drain()
    pass_review(client, rid, 1, auth(key))
    published = client.post(f"/api/v1/resources/{rid}/versions/1/publish", headers=auth(key))
    assert published.status_code == 200, published.text
    return rid


@pytest.fixture
def world(client: TestClient, platform: Platform, factory: Factory) -> dict[str, Any]:
    """A provider with one published 无条件开放 resource, and API keys for its publisher, a citizen
    and the regulator."""
    org = factory.org("sthj", "海河市生态环境局")
    pub = factory.user("pub", org=org, roles=("publisher",))
    regulator = factory.user("reg", system_role="regulator")
    keys = {
        "pub": factory.api_key(pub),
        "citizen": factory.api_key(factory.user("citizen")),
        "reg": factory.api_key(regulator),
    }
    world = {"keys": keys, "pub": pub, "org": org, "regulator": regulator, "rids": {}}
    world["rids"]["unconditional"] = add_resource(client, platform, world, "unconditional")
    return world


def add_resource(
    client: TestClient, platform: Platform, world: dict[str, Any], open_type: str, content: bytes = CSV
) -> int:
    entry_id = Factory(platform).entry(
        world["pub"],
        world["org"],
        title=f"空气质量{open_type}",
        open_type=open_type,
        regulator=world["regulator"],
    )
    return publish(client, platform, world["keys"]["pub"], entry_id, content)


def run(client: TestClient, world: dict[str, Any], text: str, who: str = "citizen") -> Any:
    """GET …/sql on the open resource; the response (not its JSON, so errors can be checked)."""
    rid = world["rids"]["unconditional"]
    return client.get(f"/api/v1/resources/{rid}/sql", params={"sql": text}, headers=auth(world["keys"][who]))


def ok(client: TestClient, world: dict[str, Any], text: str) -> dict[str, Any]:
    response = run(client, world, text)
    assert response.status_code == 200, response.text[:500]
    return response.json()  # type: ignore[no-any-return]


# --- useful queries -----------------------------------------------------------------------------------


def test_aggregate_by_district(client: TestClient, world: dict) -> None:
    body = ok(
        client,
        world,
        'SELECT 区, count(*) AS 站点数, avg("PM2.5") AS 平均 FROM data GROUP BY 区 ORDER BY 站点数 DESC, 区',
    )
    assert body["records"][0] == {"区": "和平区", "站点数": 2, "平均": 28.5}
    assert [r["区"] for r in body["records"]] == ["和平区", "南开区", "河西区"]
    assert [(f["name"], f["type"]) for f in body["fields"]] == [
        ("区", "text"),
        ("站点数", "integer"),
        ("平均", "decimal"),
    ]
    assert body["truncated"] is False
    assert body["resource"] == world["rids"]["unconditional"] and body["version"] == 1


def test_where_with_chinese_text(client: TestClient, world: dict) -> None:
    body = ok(client, world, "SELECT 站点名称 FROM data WHERE 区 = '和平区' ORDER BY \"PM2.5\"")
    assert [r["站点名称"] for r in body["records"]] == ["和平二站", "和平站"]
    like = ok(client, world, "SELECT count(*) AS n FROM data WHERE 站点名称 LIKE '%河%' OR 备注 = '正常'")
    assert like["records"] == [{"n": 2}]


def test_cte_and_window_function(client: TestClient, world: dict) -> None:
    body = ok(
        client,
        world,
        """WITH ranked AS (
             SELECT 区, 站点名称, rank() OVER (PARTITION BY 区 ORDER BY "PM2.5" DESC) AS 名次 FROM data
           )
           SELECT 区, 站点名称 FROM ranked WHERE 名次 = 1 ORDER BY 区""",
    )
    assert body["records"] == [
        {"区": "南开区", "站点名称": "南开站"},
        {"区": "和平区", "站点名称": "和平站"},
        {"区": "河西区", "站点名称": "河西站"},
    ]


def test_order_and_limit(client: TestClient, world: dict) -> None:
    body = ok(client, world, 'SELECT 站点名称, "PM2.5" FROM data ORDER BY "PM2.5" DESC LIMIT 2 OFFSET 1')
    assert body["records"] == [{"站点名称": "南开站", "PM2.5": 41.0}, {"站点名称": "和平站", "PM2.5": 35.0}]


def test_values_are_typed_json(client: TestClient, world: dict) -> None:
    body = ok(
        client,
        world,
        'SELECT 监测日期, 记录时间, 是否达标, "PM2.5", 备注, CAST(1.25 AS DECIMAL(5, 2)) AS 小数, '
        "[1, 2] AS 列表, 'nan'::DOUBLE AS 非数 FROM data WHERE 站点名称 = '河西站'",
    )
    assert body["records"] == [
        {
            "监测日期": "2026-11-01",
            "记录时间": "2026-11-01T09:30:00",
            "是否达标": False,
            "PM2.5": 58.5,
            "备注": "偏高",
            "小数": 1.25,
            "列表": [1, 2],
            "非数": None,
        }
    ]
    types = {f["name"]: (f["type"], f["sql_type"]) for f in body["fields"]}
    assert types["监测日期"] == ("date", "DATE") and types["记录时间"][0] == "datetime"
    assert types["是否达标"] == ("boolean", "BOOLEAN") and types["列表"] == ("other", "INTEGER[]")


def test_post_json_with_an_api_key_needs_no_csrf_token(client: TestClient, world: dict) -> None:
    rid = world["rids"]["unconditional"]
    response = client.post(
        f"/api/v1/resources/{rid}/sql",
        json={"sql": "SELECT count(*) AS n FROM data"},
        headers=auth(world["keys"]["citizen"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["records"] == [{"n": 4}]


def test_comments_are_not_statements(client: TestClient, world: dict) -> None:
    assert ok(client, world, "SELECT 1 AS one /* ; ATTACH '/tmp/x.db' */")["records"] == [{"one": 1}]
    assert ok(client, world, "SELECT 2 AS two -- ; DROP VIEW data")["records"] == [{"two": 2}]


def test_unicode_text_is_fine(client: TestClient, world: dict) -> None:
    assert ok(client, world, "SELECT '🚌 公交' AS 车")["records"] == [{"车": "🚌 公交"}]


def test_row_limit_truncates(client: TestClient, world: dict, platform: Platform, monkeypatch: Any) -> None:
    monkeypatch.setattr(platform.settings, "sql_max_rows", 3)
    body = ok(client, world, "SELECT 站点名称 FROM data")
    assert len(body["records"]) == 3 and body["truncated"] is True
    exact = ok(client, world, "SELECT 站点名称 FROM data LIMIT 3")
    assert len(exact["records"]) == 3 and exact["truncated"] is False


def test_hidden_row_column_stays_hidden(client: TestClient, world: dict, platform: Platform) -> None:
    assert "_row" not in [f["name"] for f in ok(client, world, "SELECT * FROM data")["fields"]]
    error = assert_error(run(client, world, "SELECT _row FROM data"), 422, "sql_error")
    assert "_row" in error["message"]
    assert str(platform.settings.files_dir.resolve()) not in error["message"]


def test_duplicate_column_names_are_refused(client: TestClient, world: dict) -> None:
    error = assert_error(run(client, world, "SELECT 1 AS a, 2 AS a"), 422, "sql_error")
    assert "重名" in error["message"] and "AS" in error["message"]


def test_bad_sql_names_the_position(client: TestClient, world: dict) -> None:
    error = assert_error(run(client, world, "SELECT 站点名称 FORM data WHERE"), 422, "sql_refused")
    assert "语法错误" in error["message"] and "第 1 行" in error["message"]


# --- hostile queries: refused before any DuckDB connection exists ---------------------------------------

HOSTILE = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM '/etc/passwd'",
    "FROM '/etc/passwd'",
    'SELECT * FROM "/etc/passwd"',
    "SELECT * FROM glob('/*')",
    "SELECT * FROM read_parquet('/tmp/*.parquet')",
    "SELECT * FROM sqlite_scan('/tmp/x.db', 't')",
    "SELECT * FROM postgres_scan('host=127.0.0.1', 'public', 't')",
    "SELECT * FROM iceberg_scan('s3://bucket/t')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM range(10)",
    "ATTACH '/tmp/x.db' AS x",
    "DETACH x",
    "COPY data TO '/tmp/x.csv'",
    "COPY (SELECT * FROM data) TO '/tmp/x.csv'",
    "EXPORT DATABASE '/tmp/x'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "RESET lock_configuration",
    "PRAGMA version",
    "CALL duckdb_settings()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pragma_version()",
    "SELECT getenv('HOME')",
    "SELECT \"getenv\"('HOME')",
    "SELECT main.getenv('HOME')",
    "SELECT 'HOME'.getenv()",
    "SELECT current_setting('threads')",
    "SELECT getvariable('x')",
    "SELECT duckdb_extensions()",
    "SELECT 1; DROP VIEW data",
    "SELECT * FROM data; SELECT 1",
    "CREATE TABLE t AS SELECT * FROM data",
    "CREATE MACRO m(x) AS x",
    "INSERT INTO data VALUES (1)",
    "UPDATE data SET 区 = '河东区'",
    "DELETE FROM data",
    "DROP VIEW data",
    "ALTER VIEW data RENAME TO x",
    "DESCRIBE data",
    "SELECT * FROM (DESCRIBE data)",
    "SHOW TABLES",
    "SUMMARIZE data",
    "EXPLAIN ANALYZE SELECT * FROM data",
    "USE memory",
    "BEGIN",
    "CHECKPOINT",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM duckdb_tables",
    "SELECT * FROM pg_catalog.pg_settings",
    "SELECT * FROM main.data",
    "SELECT * FROM data, other",
    "SELECT * FROM data JOIN other ON true",
    "SELECT * FROM data WHERE 区 IN (SELECT 区 FROM other)",
    "SELECT (SELECT count(*) FROM duckdb_tables()) AS n",
    "WITH a AS (SELECT * FROM pg_settings) SELECT * FROM a",
    "WITH pg_settings AS (SELECT * FROM pg_settings) SELECT * FROM pg_settings",
    "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a",
    "SELECT * FROM (WITH pg_settings AS (SELECT 1) SELECT * FROM pg_settings) "
    "UNION SELECT * FROM pg_settings",
    "SELECT list_transform([1], x -> getenv('HOME'))",
    "SELECT '和平\x00'",
    "SELECT 1；DROP VIEW data",
    "SELECT " + "(" * 3000 + "1" + ")" * 3000,
    "",
]


@pytest.fixture
def jobs(monkeypatch: Any) -> list[sql_worker.Job]:
    """Every query handed to a worker process (the spy still runs it)."""
    handed: list[sql_worker.Job] = []
    run = sql_worker.run

    def spy(job: sql_worker.Job) -> sql_worker.Outcome:
        handed.append(job)
        return run(job)

    monkeypatch.setattr(sql_worker, "run", spy)
    return handed


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries_are_refused_before_running(
    client: TestClient, world: dict, jobs: list, text: str
) -> None:
    response = run(client, world, text)
    assert_error(response, 422, "sql_refused")
    assert jobs == []


def test_a_query_that_passes_runs_as_generated(client: TestClient, world: dict, jobs: list) -> None:
    ok(client, world, "select 1 as one -- 注释")
    assert [job.sql for job in jobs] == ["SELECT 1 AS one"]


def test_text_longer_than_the_limit_is_refused(
    client: TestClient, world: dict, platform: Platform, jobs: list
) -> None:
    limit = platform.settings.sql_max_length
    rid = world["rids"]["unconditional"]
    response = client.post(
        f"/api/v1/resources/{rid}/sql",
        json={"sql": "SELECT 1 AS x" + " " * limit},
        headers=auth(world["keys"]["citizen"]),
    )
    error = assert_error(response, 422, "sql_refused")
    assert "过长" in error["message"] and f"{limit:,}" in error["message"]
    assert jobs == []


def test_a_slow_query_is_stopped_and_the_server_goes_on(
    client: TestClient, world: dict, platform: Platform, monkeypatch: Any
) -> None:
    rows = "".join(f"{i},{i % 7}\n" for i in range(2000))
    rid = add_resource(client, platform, world, "unconditional", f"序号,值\n{rows}".encode())
    monkeypatch.setattr(platform.settings, "sql_timeout_seconds", 0.5)
    # 8·10⁹ rows of a cross join: minutes of work, whatever the optimizer knows of the columns
    slow = "SELECT count(*) AS n FROM data a, data b, data c WHERE (a.序号 * b.序号 + c.序号) % 1000003 = 7"
    started = time.perf_counter()
    response = client.get(
        f"/api/v1/resources/{rid}/sql", params={"sql": slow}, headers=auth(world["keys"]["citizen"])
    )
    elapsed = time.perf_counter() - started
    error = assert_error(response, 422, "sql_timeout")
    assert "0.5 秒" in error["message"] and "已停止" in error["message"]
    assert elapsed < 5, elapsed
    after = client.get(
        f"/api/v1/resources/{rid}/sql",
        params={"sql": "SELECT count(*) AS n FROM data"},
        headers=auth(world["keys"]["citizen"]),
    )
    assert after.status_code == 200 and after.json()["records"] == [{"n": 2000}]


@pytest.mark.parametrize(
    "text",
    [
        "SELECT length(repeat('x', 1000000000)) AS n",
        "SELECT length(" + "replace(" * 8 + "'xxxxxxxxxx'" + ", 'x', 'xxxxxxxxxx')" * 8 + ") AS n",
    ],
)
def test_a_query_past_the_memory_limit_fails_in_its_worker(
    client: TestClient, world: dict, platform: Platform, monkeypatch: Any, text: str
) -> None:
    """Strings built by repeat or nested replace escape DuckDB's memory_limit; the worker's own
    limit stops them (without it the first query here takes 2 GB of the server's memory)."""
    monkeypatch.setattr(platform.settings, "sql_memory_mb", 64)
    error = assert_error(run(client, world, text), 422, "sql_error")
    assert "内存" in error["message"]
    assert ok(client, world, "SELECT count(*) AS n FROM data")["records"] == [{"n": 4}]


def test_a_query_deaf_to_interrupts_is_killed(
    client: TestClient, world: dict, platform: Platform, monkeypatch: Any
) -> None:
    """DuckDB checks its interrupt between chunks: one regexp_replace over a 30-million-character
    string runs for seconds regardless. Its worker is killed past the time limit plus a grace."""
    monkeypatch.setattr(platform.settings, "sql_timeout_seconds", 0.3)
    started = time.perf_counter()
    response = run(client, world, "SELECT length(regexp_replace(repeat('a', 30000000), 'a', 'bb', 'g')) AS n")
    elapsed = time.perf_counter() - started
    assert_error(response, 422, "sql_timeout")
    assert elapsed < 0.3 + sql_worker.GRACE_SECONDS + 1, elapsed
    assert ok(client, world, "SELECT count(*) AS n FROM data")["records"] == [{"n": 4}]


def test_too_many_concurrent_queries_are_turned_away(
    client: TestClient, world: dict, platform: Platform, monkeypatch: Any
) -> None:
    ok(client, world, "SELECT 1 AS one")  # the pool exists once a query ran
    pool = sql_worker._pool
    assert pool is not None
    monkeypatch.setattr(platform.settings, "sql_timeout_seconds", 0.2)
    held = [pool.slots.get_nowait() for _ in range(WORKERS)]
    try:
        response = run(client, world, "SELECT 1 AS one")
    finally:
        for worker in held:
            pool.slots.put(worker)
    assert_error(response, 429, "rate_limited")
    assert response.headers["retry-after"] == "1"
    assert ok(client, world, "SELECT 1 AS one")["records"] == [{"one": 1}]


# --- who may query --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_type", "who", "status"),
    [
        ("unconditional", "anonymous", 401),
        ("unconditional", "citizen", 200),
        ("unconditional", "reg", 200),
        ("conditional", "anonymous", 401),
        ("conditional", "citizen", 403),
        ("conditional", "pub", 200),
        ("closed", "citizen", 404),
        ("closed", "reg", 403),
        ("closed", "pub", 200),
    ],
)
def test_queries_follow_the_open_type(
    client: TestClient, platform: Platform, world: dict, open_type: str, who: str, status: int
) -> None:
    rid = world["rids"].get(open_type) or add_resource(client, platform, world, open_type)
    headers = {} if who == "anonymous" else auth(world["keys"][who])
    response = client.get(
        f"/api/v1/resources/{rid}/sql",
        params={"sql": "SELECT count(*) AS n FROM data"},
        headers=headers,
    )
    if status == 200:
        assert response.status_code == 200 and response.json()["records"] == [{"n": 4}]
    else:
        assert_error(response, status)


def test_a_signed_in_browser_without_a_key_is_refused(client: TestClient, world: dict) -> None:
    login(client, "citizen")
    response = client.get(
        f"/api/v1/resources/{world['rids']['unconditional']}/sql", params={"sql": "SELECT 1 AS one"}
    )
    assert "API 密钥" in assert_error(response, 401)["message"]


# --- the connection is locked down by itself ------------------------------------------------------------


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    table = pa.table({"_row": pa.array([0, 1], pa.int64()), "区": ["和平区", "河西区"], "值": [1, 2]})
    pq.write_table(table, tmp_path / "data.parquet")
    pq.write_table(table, tmp_path / "other.parquet")
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    return tmp_path / "data.parquet"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv('{dir}/secret.csv')",
        "SELECT * FROM '{dir}/secret.csv'",
        "SELECT * FROM read_parquet('{dir}/other.parquet')",
        "SELECT * FROM read_parquet('{dir}/*.parquet')",
        "SELECT * FROM glob('{dir}/*')",
        "SELECT * FROM read_text('/etc/hostname')",
        "COPY data TO '{dir}/out.csv'",
        "ATTACH '{dir}/x.db' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET allowed_paths = ['/etc/passwd']",
        "SET memory_limit = '100GB'",
        "SET temp_directory = '{dir}'",
    ],
)
def test_the_connection_itself_refuses_files_and_settings(parquet: Path, statement: str) -> None:
    con = open_connection(parquet, 128)
    try:
        with pytest.raises(duckdb.Error):
            con.execute(statement.format(dir=parquet.parent)).fetchall()
        assert con.execute("SELECT sum(值) FROM data").fetchall() == [(3,)]
    finally:
        con.close()
    assert not (parquet.parent / "out.csv").exists() and not (parquet.parent / "x.db").exists()


def test_the_connection_hides_the_row_column(parquet: Path) -> None:
    con = open_connection(parquet, 128)
    try:
        assert [d[0] for d in con.execute("SELECT * FROM data").description or []] == ["区", "值"]
    finally:
        con.close()


def test_a_missing_data_file_is_the_servers_fault(tmp_path: Path) -> None:
    """Not the caller's: a RuntimeError (a logged 500), not a 4xx blaming the query."""
    with pytest.raises(RuntimeError, match=r"gone\.parquet"):
        run_sql(tmp_path / "gone.parquet", "SELECT 1 AS one", SqlLimits(5, 10, 1000, 64))


def test_every_allowed_function_is_a_duckdb_function() -> None:
    """The allow-list has no typos: each name is a DuckDB function or SQL syntax sqlglot writes as a call."""
    con = duckdb.connect()
    names = {row[0] for row in con.execute("SELECT function_name FROM duckdb_functions()").fetchall()}
    con.close()
    syntax = {"coalesce", "columns", "grouping", "grouping_id"}
    assert ALLOWED_FUNCTIONS - names <= syntax
    assert not {
        n for n in ALLOWED_FUNCTIONS if n.startswith(("read_", "duckdb_", "pragma_", "current_setting"))
    }


def test_check_sql_returns_the_sql_it_checked() -> None:
    assert (
        check_sql("SELECT 区 FROM data /* 注释 */ WHERE 值 > 1 -- 末尾") == "SELECT 区 FROM data WHERE 值 > 1"
    )


@pytest.mark.parametrize(
    "expression",
    [
        "date_trunc('month', 监测日期)",
        "strftime(记录时间, '%Y-%m')",
        "year(监测日期) * 100 + month(监测日期)",
        "监测日期 + INTERVAL 1 DAY",
        "date_add(监测日期, INTERVAL 1 DAY)",
        "date_diff('day', 监测日期, DATE '2026-12-31')",
        'round(avg("PM2.5"), 1)',
        "ifnull(备注, '无')",
        "CASE WHEN \"PM2.5\" > 50 THEN '偏高' ELSE '正常' END",
        'CAST("PM2.5" AS INTEGER)',
        "string_agg(站点名称, '、' ORDER BY 站点名称)",
        "regexp_replace(站点名称, '站$', '')",
        "substr(站点名称, 1, 2) || '…'",
        'quantile_cont("PM2.5", 0.9)',
        "count(*) FILTER (WHERE 是否达标)",
        'lag("PM2.5") OVER (PARTITION BY 区 ORDER BY 监测日期)',
        "EXTRACT(hour FROM 记录时间)",
    ],
)
def test_common_functions_are_allowed(expression: str) -> None:
    assert check_sql(f"SELECT {expression} AS x FROM data").startswith("SELECT ")


def test_long_conditions_are_checked_quickly() -> None:
    """Checking is linear in the text: a 9,500-character chain of conditions takes milliseconds."""
    text = "SELECT 1 AS x FROM data WHERE " + " OR ".join(f'abs("PM2.5") = {i}' for i in range(500))
    started = time.perf_counter()
    check_sql(text, 20_000)
    assert time.perf_counter() - started < 1


def test_the_api_docs_describe_the_sql_endpoint(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert 'id="sql"' in page.text and "/api/v1/resources/{resource_id}/sql" in page.text
    assert "表名固定为 data" in page.text and "SQL 查询接口（只读，需 API 密钥）" in page.text
