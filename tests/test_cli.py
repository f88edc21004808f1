import pytest

from sensorium import cli, server


@pytest.fixture
def captured(monkeypatch):
    seen = []
    monkeypatch.setattr(server, "run", seen.append)
    return seen


def test_serve_defaults(captured):
    cli.main(["serve"])
    assert captured == [server.ServerOptions()]


def test_flags_override_the_config_file(captured, tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('[server]\nhost = "0.0.0.0"\nhttp_port = 9000\ntoken = "t"\n'
                   '[database]\nfsync = "none"\n')
    cli.main(["serve", "--config", str(cfg), "--http-port", "0", "--data-dir", "/d",
              "--no-resp"])
    (o,) = captured
    assert (o.host, o.http_port, o.data_dir, o.resp_port, o.token, o.database.fsync) == (
        "0.0.0.0", 0, "/d", None, "t", "none")


def test_bad_config_is_a_clean_exit(captured, tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("[server]\nhttp-port = 1\n")
    with pytest.raises(SystemExit, match="unknown \\[server\\] key"):
        cli.main(["serve", "--config", str(cfg)])
    with pytest.raises(SystemExit, match="bad --config"):
        cli.main(["serve", "--config", str(tmp_path / "missing.toml")])
