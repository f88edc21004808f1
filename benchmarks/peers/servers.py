"""The systems under test as subprocesses: start, pause, flush to disk, measure, stop.

Each server runs on a free 127.0.0.1 port with a fresh data directory under the run's scratch
directory, with its defaults except where a comment says why. Nothing here touches a system
service: the peers' binaries come from Debian's packages (``setup.sh``) and are started
directly. ``pause``/``resume`` send SIGSTOP/SIGCONT, so that a system's background work
(merges, compactions, checkpoints) runs in its own measured time, not in another's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO_SRC = Path(__file__).resolve().parents[2] / "src"  # the checkout being measured
START_TIMEOUT_S = 120.0
SETTLE_TIMEOUT_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def disk_bytes(path: str | Path) -> int:
    """Bytes allocated on disk under ``path`` (``du``: blocks, not apparent sizes)."""
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[0])


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited {proc.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=2).status_code < 300:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {START_TIMEOUT_S} s; see {log}")


class Server:
    """One system under test. Subclasses say how to start it and how to flush it.

    Attributes:
        name: short name used in reports.
        write_path: the line-protocol write path and query string.
        data_dir: what ``disk_bytes`` measures.
    """

    name = ""
    write_path = "/write"

    def __init__(self, root: Path) -> None:
        self.root = root / self.name
        self.root.mkdir(parents=True)
        self.data_dir = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready_url(self) -> str:
        return self.url + "/health"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env(), cwd=self.root)
        _wait_http(self.ready_url(), self.proc, self.log)
        self.paused = False

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pause(self) -> None:
        if not self.paused:
            os.kill(self.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.paused:
            os.kill(self.pid, signal.SIGCONT)
            self.paused = False

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def flush(self) -> None:
        """Makes every acknowledged sample durable in the system's compressed format."""
        raise NotImplementedError

    def settle(self) -> None:
        """Background merging the system would do anyway, done now (default: nothing)."""

    def disk_bytes(self) -> int:
        """The whole data directory (``du``)."""
        return disk_bytes(self.data_dir)

    def sample_bytes(self) -> int:
        """Apparent size of the files that hold compressed samples (no index, log, meta)."""
        return sum(p.stat().st_size for p in self.data_dir.rglob("*")
                   if p.is_file() and self.is_sample_file(p))

    def is_sample_file(self, path: Path) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(SETTLE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait()


class Sensorium(Server):
    """``sensorium serve`` of this checkout, HTTP only, default options (fsync per batch)."""

    name = "sensorium"
    write_path = "/write?db=bench"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "sensorium.cli", "serve", "--data-dir",
                str(self.data_dir), "--http-port", str(self.port), "--no-resp"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_SRC), env.get("PYTHONPATH"))
                                            if p)
        return env

    def is_sample_file(self, path: Path) -> bool:
        return path.suffix == ".parquet" and path.name.startswith("raw")

    def flush(self) -> None:
        # A clean shutdown checkpoints (memory to blocks, log truncated); a new server on
        # the same directory then answers the queries from the blocks.
        self.stop()
        self.start()


class VictoriaMetrics(Server):
    """Single-node VictoriaMetrics; InfluxDB line protocol on its HTTP port at ``/write``."""

    name = "victoriametrics"
    write_path = "/write"  # no db=: VictoriaMetrics would add it as a label

    def command(self) -> list[str]:
        return ["victoria-metrics", f"-storageDataPath={self.data_dir}",
                f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=100y",
                # Repeated identical range queries would otherwise be answered from its
                # rollup result cache; the queries also pass nocache=1.
                "-search.disableCache", "-loggerLevel=WARN"]

    def is_sample_file(self, path: Path) -> bool:
        return path.relative_to(self.data_dir).parts[0] == "data"  # not indexdb, metadata

    def flush(self) -> None:
        # force_flush returns before the newest rows are in parts on disk (1.79 still
        # flushes its raw-row buffers on a timer): wait until the part files stop growing.
        r = httpx.get(self.url + "/internal/force_flush", timeout=SETTLE_TIMEOUT_S)
        r.raise_for_status()
        _wait_stable(self.data_dir, self.sample_bytes, quiet_s=5.0)

    def settle(self) -> None:
        """Merges every partition into as few parts as it can (``/internal/force_merge``)."""
        r = httpx.get(self.url + "/internal/force_merge", timeout=SETTLE_TIMEOUT_S)
        r.raise_for_status()
        _wait_stable(self.data_dir)


class InfluxDB(Server):
    """InfluxDB 1.x (``influxd``), database ``bench``, the inmem index (its default)."""

    name = "influxdb"
    write_path = "/write?db=bench"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.rpc_port = free_port()
        self.cold = False

    def config(self) -> str:
        # cache-snapshot/compact-full cold durations: defaults (10 m, 4 h) while ingesting;
        # ``flush`` restarts with short ones, the only way to make 1.x write its cache to
        # TSM files and fully compact them without waiting hours.
        snapshot, full = ("1s", "5s") if self.cold else ("10m0s", "4h0m0s")
        return f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.data_dir}/meta"
[data]
  dir = "{self.data_dir}/data"
  wal-dir = "{self.data_dir}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "{snapshot}"
  compact-full-write-cold-duration = "{full}"
  max-values-per-tag = 0
  max-series-per-database = 0
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
"""

    def command(self) -> list[str]:
        cfg = self.root / "influxdb.conf"
        cfg.write_text(self.config())
        return ["influxd", "run", "-config", str(cfg)]

    def ready_url(self) -> str:
        return self.url + "/ping"

    def start(self) -> None:
        super().start()
        r = httpx.post(self.url + "/query", data={"q": "CREATE DATABASE bench"}, timeout=30)
        r.raise_for_status()

    def is_sample_file(self, path: Path) -> bool:
        return path.suffix == ".tsm"

    def flush(self) -> None:
        # Its newest WAL segment stays after the snapshot (until it rolls over at 10 MB):
        # that, the series files and meta are in the directory figure, not in sample_bytes.
        self.stop()
        self.cold = True
        self.start()
        _wait_stable(self.data_dir, lambda: (self.sample_bytes(), self._compacting()))

    def _compacting(self) -> bool:
        return any(p.suffix == ".tmp" for p in (self.data_dir / "data").rglob("*"))


def _wait_stable(path: Path, probe: Callable[[], object] | None = None,
                 quiet_s: float = 10.0) -> None:
    """Until ``probe()`` (default: the bytes under ``path``) has not changed for ``quiet_s``:
    snapshots and merges have finished."""
    last: object = None
    since = time.time()
    deadline = time.time() + SETTLE_TIMEOUT_S
    while time.time() < deadline:
        now = probe() if probe else disk_bytes(path)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet_s:
            return
        time.sleep(1.0)


SYSTEMS: dict[str, type[Server]] = {s.name: s for s in (Sensorium, VictoriaMetrics, InfluxDB)}


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
