"""``sensorium serve`` as a real subprocess, for black-box tests with real clients.

    def test_x(serve_process):              # one server per test module (shared, fast)
        httpx.get(serve_process.http_url + "/ping")
        redis.Redis(port=serve_process.resp_port)

    def test_y(serve_factory, tmp_path):    # a server of your own (config, restarts)
        srv = serve_factory(tmp_path / "data", config={"server": {"token": "t"}})
        srv.stop()                          # SIGTERM, wait; or srv.kill() for kill -9
        srv = serve_factory(tmp_path / "data")   # same directory: restart

Ports are chosen by the server itself (``--http-port 0 --resp-port 0``) and read from the
addresses it prints, so parallel runs never collide. Every process started here is killed at
teardown; its stderr (logs) is kept in ``<data_dir>.stderr`` for failing tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

STARTUP_TIMEOUT_S = 60.0  # a cold start imports numpy/pyarrow/uvicorn; replay may follow
STOP_TIMEOUT_S = 30.0


def _die_with_parent() -> None:
    """In the child: be killed when pytest dies, even by SIGKILL (no orphaned servers)."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


class ServeProcess:
    """A running ``sensorium serve``: ``http_url``, ``resp_port`` (None without RESP),
    ``data_dir``, ``proc`` (the Popen), ``lines`` (its stdout so far)."""

    def __init__(self, data_dir: Path, args: list[str], config: Path | None) -> None:
        self.data_dir = data_dir
        self.lines: list[str] = []
        self.http_url = ""
        self.resp_port: int | None = None
        self._ready = threading.Event()
        self.stderr_path = Path(f"{data_dir}.stderr")
        cmd = [sys.executable, "-m", "sensorium.cli", "serve", "--data-dir", str(data_dir),
               "--host", "127.0.0.1", "--http-port", "0", *args]
        if config is not None:
            cmd += ["--config", str(config)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env,
                                         text=True, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S) or not self.http_url:
            self.kill()
            raise RuntimeError(f"sensorium serve did not start: {self.lines} "
                               f"{self.stderr_path.read_text()[-2000:]}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if m := re.match(r"http (http://\S+)", line):
                self.http_url = m.group(1)
            elif m := re.match(r"resp redis://\S+:(\d+)", line):
                self.resp_port = int(m.group(1))
            elif line == "ready":
                self._ready.set()
        self._ready.set()  # exited: let a waiting start fail fast

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Sends ``sig`` and waits for the exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(STOP_TIMEOUT_S)
        self._close()
        return code

    def kill(self) -> None:
        """``kill -9``: no shutdown, no checkpoint."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)
        self._close()

    def _close(self) -> None:
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _write_config(path: Path, config: dict[str, dict[str, Any]]) -> Path:
    def toml(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(v)
    text = "".join(f"[{table}]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in values.items())
                   for table, values in config.items())
    path.write_text(text)
    return path


def start_serve(data_dir: Path, *, config: dict[str, dict[str, Any]] | None = None,
                resp: bool = True, args: tuple[str, ...] = ()) -> ServeProcess:
    """Starts ``sensorium serve`` on ``data_dir`` and waits until it is ready.

    ``config`` is written as TOML next to the directory (``{"server": {...},
    "database": {...}}``). The caller kills it (``serve_factory`` does so itself).
    """
    data_dir = Path(data_dir)
    cfg = None
    if config is not None:
        cfg = _write_config(data_dir.parent / f"{data_dir.name}.toml", config)
    flags = ["--resp-port", "0"] if resp else ["--no-resp"]
    return ServeProcess(data_dir, [*flags, *args], cfg)


StartServe = Callable[..., ServeProcess]


@pytest.fixture
def serve_factory() -> Iterator[StartServe]:
    """``start(data_dir, *, config=None, resp=True, args=())`` → a ready ServeProcess,
    killed at the end of the test (see ``start_serve``)."""
    started: list[ServeProcess] = []

    def start(data_dir: Path, **kwargs: Any) -> ServeProcess:
        srv = start_serve(data_dir, **kwargs)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.kill()


@pytest.fixture(scope="module")
def serve_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One ``sensorium serve`` (HTTP and RESP, no token) shared by a test module."""
    srv = ServeProcess(tmp_path_factory.mktemp("serve") / "data", ["--resp-port", "0"], None)
    yield srv
    srv.kill()


SECURED_TOKEN = "s3cret-t0ken"
SECURED_MAX_BODY_BYTES = 1 << 20


@pytest.fixture(scope="session")
def secured_serve_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One ``sensorium serve`` with a token (``SECURED_TOKEN``, for HTTP and RESP) and a 1 MiB
    HTTP body limit (``SECURED_MAX_BODY_BYTES``), shared by the whole session."""
    srv = start_serve(tmp_path_factory.mktemp("secured") / "data",
                      config={"server": {"token": SECURED_TOKEN,
                                         "max_body_bytes": SECURED_MAX_BODY_BYTES}})
    yield srv
    srv.kill()


def wait_until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Polls ``check`` until it is true (for effects that land asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
