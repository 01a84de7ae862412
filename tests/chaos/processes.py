"""Child processes for the fault-injection suite: start, wait for readiness, kill, never orphan.

Every child runs in its own session (process group), so killing the group takes its forks with it
(gunicorn's workers, Celery's pool child). Output goes to a log file per child, whose tail is shown
when a test fails.
"""

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "") -> object:
    """Poll until `predicate()` is truthy; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


class Child:
    """One child process (and its process group), its log file and its readiness check."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg reaches its forks too
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def descendants(self) -> list[int]:
        return descendants_of(self.pid)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, *, grace: float = 5.0) -> None:
        """SIGTERM the main process (a warm shutdown for Celery and gunicorn), SIGKILL the whole group
        after `grace`, reap; close the log."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        # Whatever survived in the group (a pool child whose parent died) goes too.
        self.kill_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        self._log.close()


def _live_processes() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, process group)} of every live process, zombies aside, from /proc/*/stat
    (this kernel has no /proc/<pid>/task/<tid>/children)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The command name may contain spaces: the fields after the last ')' are fixed.
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                found[int(entry)] = (int(fields[1]), int(fields[2]))
    return found


def live_process_groups() -> dict[int, int]:
    """{pid: process group} of every live process."""
    return {pid: group for pid, (_parent, group) in _live_processes().items()}


def descendants_of(pid: int) -> list[int]:
    """Every live descendant of `pid`."""
    parents = {child: parent for child, (parent, _group) in _live_processes().items()}
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        children = [child for child, parent in parents.items() if parent == current]
        found.extend(children)
        frontier.extend(children)
    return found


def connected_to(pid: int, port: int) -> bool:
    """Whether `pid` has an established TCP connection to 127.0.0.1:`port` (it is mid-call)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    if not inodes:
        return False
    wanted = f"0100007F:{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2] == wanted and fields[3] == "01" and fields[9] in inodes:  # 01 = ESTABLISHED
                return True
    return False


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    return check
