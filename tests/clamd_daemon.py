"""A real clamd (Debian's ``clamav-daemon``) for the tests: started on a unix socket, stopped by its pid.

Each daemon gets a temporary directory with its own ``clamd.conf`` and a one-signature database written
here (no freshclam, no network): ``Demo.EICAR`` matches the EICAR test string anywhere in a stream.
``StreamMaxLength`` is small by default (1 MiB) so a test can make clamd refuse an artifact for its size.
.ci/run installs the package when clamd is missing; without it the tests say how to install it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from polyswarmclient.samples import EICAR

#: The signature's name, as clamd reports a match on an unsigned (local) database.
SIGNATURE = "Demo.EICAR.UNOFFICIAL"


def clamd_binary() -> str:
    found = shutil.which("clamd") or next((p for p in ("/usr/sbin/clamd",) if Path(p).exists()), None)
    if found is None:
        raise AssertionError("clamd is not installed: apt-get install clamav-daemon (bash .ci/run does it)")
    return found


def ping(path: Path) -> bool:
    """True when a clamd on the unix socket ``path`` answers PONG."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(path))
            sock.sendall(b"zPING\0")
            return sock.recv(16).rstrip(b"\0") == b"PONG"
    except OSError:
        return False


class Clamd:
    """One clamd process with its own config, database and socket under ``workdir``."""

    def __init__(self, workdir: Path, stream_max_length: str = "1M", tcp_port: int | None = None) -> None:
        self.workdir = workdir
        self.tcp_port = tcp_port
        self.socket = workdir / "clamd.sock"
        self.log = workdir / "clamd.log"
        database = workdir / "db"
        database.mkdir(parents=True, exist_ok=True)
        (database / "demo.ndb").write_text(f"Demo.EICAR:0:*:{EICAR.hex()}\n", encoding="ascii")
        self.config = workdir / "clamd.conf"
        self.config.write_text(
            "\n".join(
                [
                    f"LocalSocket {self.socket}",
                    f"DatabaseDirectory {database}",
                    f"LogFile {self.log}",
                    f"PidFile {workdir / 'clamd.pid'}",
                    "Foreground yes",
                    f"StreamMaxLength {stream_max_length}",
                    "MaxThreads 4",
                    *([f"TCPSocket {tcp_port}", "TCPAddr 127.0.0.1"] if tcp_port else []),
                    "",
                ]
            ),
            encoding="ascii",
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Self:
        self.process = subprocess.Popen(
            [clamd_binary(), f"--config-file={self.config}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not ping(self.socket):
            if self.process.poll() is not None:
                raise AssertionError(f"clamd exited with code {self.process.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"clamd did not answer PING within {timeout:.0f} s:\n{self.log_text()}")
            time.sleep(0.05)
        return self

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no clamd log)"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
