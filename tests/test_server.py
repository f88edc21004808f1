import pytest

from sensorium.config import DatabaseOptions
from sensorium.model import DuplicatePolicy
from sensorium.server import ServerOptions, load_config


def config(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return load_config(str(path))


def test_defaults():
    o = ServerOptions()
    assert (o.host, o.http_port, o.resp_port, o.token) == ("127.0.0.1", 8080, 6380, None)
    assert o.database == DatabaseOptions()


def test_full_config(tmp_path):
    o = config(tmp_path, """
[server]
data_dir = "/srv/data"
host = "0.0.0.0"
http_port = 9000
resp_port = false
token = "t"
max_body_bytes = 1024

[database]
duplicate_policy = "last"
retention_ms = 86400000
fsync = "periodic"
fsync_interval_s = 2
background = false
""")
    assert (o.data_dir, o.host, o.http_port, o.resp_port, o.token, o.max_body_bytes) == (
        "/srv/data", "0.0.0.0", 9000, None, "t", 1024)
    assert o.database.duplicate_policy is DuplicatePolicy.LAST
    assert (o.database.retention_ms, o.database.fsync, o.database.fsync_interval_s,
            o.database.background) == (86_400_000, "periodic", 2, False)


def test_empty_config_is_the_defaults(tmp_path):
    assert config(tmp_path, "") == ServerOptions()


@pytest.mark.parametrize(("text", "message"), [
    ("[server]\nport = 1\n", "unknown [server] key"),
    ("[databse]\n", "unknown table"),
    ("[database]\nshards = 'two'\n", "shards must be a int"),
    ("[database]\nbackground = 1\n", "background must be a bool"),
    ("[database]\nretention_ms = true\n", "retention_ms must be a int"),
    ("[database]\nwal = 1\n", "unknown [database] key"),
    ("[database]\nduplicate_policy = 'newest'\n", "DUPLICATE_POLICY"),
])
def test_bad_config(tmp_path, text, message):
    with pytest.raises(Exception, match=message.replace("[", r"\[").replace("]", r"\]")):
        config(tmp_path, text)


def test_http_socket_disables_nagle():
    """Accepted connections inherit TCP_NODELAY; without it a keep-alive JSON reply waited
    ~40 ms for the client's delayed ACK."""
    import socket

    from sensorium.server import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        client = socket.create_connection(sock.getsockname())
        conn, _ = sock.accept()
        assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        conn.close()
        client.close()
    finally:
        sock.close()
