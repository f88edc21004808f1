"""``sensorium sql``: embedded queries printed as a table, CSV or JSON."""

import json

import numpy as np
import pytest

import sensorium
from sensorium import cli


@pytest.fixture
def data_dir(tmp_path):
    path = str(tmp_path / "db")
    with sensorium.open(path, background=False) as db:
        db.create("a", labels={"zone": "A"})
        db.madd(np.array(["a", "a"], object), [1_000, 2_500], [1.5, 2.5])
    return path


Q = "SELECT zone, time, value FROM samples ORDER BY time"


def test_table_csv_and_json(data_dir, capsys):
    cli.main(["sql", Q, "--data-dir", data_dir])
    assert capsys.readouterr().out.splitlines() == [
        "zone | time                     | value",
        "-----+--------------------------+------",
        "A    | 1970-01-01T00:00:01.000Z | 1.5  ",
        "A    | 1970-01-01T00:00:02.500Z | 2.5  ",
        "(2 rows)"]
    cli.main(["sql", Q, "--data-dir", data_dir, "--format", "csv"])
    assert capsys.readouterr().out == ("zone,time,value\nA,1970-01-01T00:00:01.000Z,1.5\n"
                                       "A,1970-01-01T00:00:02.500Z,2.5\n")
    cli.main(["sql", Q, "--data-dir", data_dir, "--format", "json"])
    body = json.loads(capsys.readouterr().out)
    assert body["rows"] == [["A", "1970-01-01T00:00:01.000Z", 1.5],
                            ["A", "1970-01-01T00:00:02.500Z", 2.5]]
    assert [c["type"] for c in body["columns"]] == ["VARCHAR", "TIMESTAMP", "DOUBLE"]


def test_errors_exit_with_the_message(data_dir, tmp_path):
    with pytest.raises(SystemExit, match='sensorium sql: .*"zon" not found'):
        cli.main(["sql", "SELECT zon FROM samples", "--data-dir", data_dir])
    with pytest.raises(SystemExit, match="no database in"):
        cli.main(["sql", "SELECT 1", "--data-dir", str(tmp_path / "missing")])
    with sensorium.open(data_dir, background=False):  # held by another user (a server)
        with pytest.raises(SystemExit, match="sensorium sql: "):
            cli.main(["sql", "SELECT 1", "--data-dir", data_dir])
