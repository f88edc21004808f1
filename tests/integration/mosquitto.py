"""A real Debian ``mosquitto`` broker on a free loopback port, for the MQTT tests.

``.ci/run`` installs it (``apt-get install mosquitto``; the binary lives in /usr/sbin). A
missing broker fails the tests with that instruction instead of skipping them, so CI can never
pass without running them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.access(p, os.X_OK)),
        None)
    if found is None:
        pytest.fail("mosquitto is not installed: run .ci/run, or "
                    "apt-get install -y mosquitto (Debian's package), then rerun the tests")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A running mosquitto: ``port``; ``stop()`` and ``start()`` again on the same port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "max_queued_messages 100000\npersistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with open(self.workdir / "mosquitto.log", "ab") as log:
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not start: " + (
                        self.workdir / "mosquitto.log").read_text()[-2000:]) from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def running_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """For a fixture: a broker until the fixture's scope ends."""
    b = Broker(tmp_path_factory.mktemp("mosquitto"))
    yield b
    b.stop()
