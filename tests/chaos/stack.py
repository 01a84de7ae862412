"""The system under fault injection, as real processes: gunicorn (4 workers), Celery workers on
Redis (acks_late), and the Wise, Square and Stripe stand-ins, all on loopback.

The children run the product's own settings module (config.settings), configured only through
the environment, against pytest-django's test database. The test process talks to them the way
the outside world does: HTTP to the site, HTTP to the stand-ins' /__sandbox__/ control endpoints,
and Celery messages on the broker (a beat tick is a message).
"""

import ast
import contextlib
import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import redis
from celery import Celery
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kombu import Connection

from tests.chaos.processes import VENV_BIN, Child, connected_to, free_port, http_ready, live_process_groups, wait_for

STRIPE_WEBHOOK_SECRET = "whsec_chaos_suite"
STRIPE_SECRET_KEY = "sk_test_chaos_suite"
# The children run with DEBUG off, as production: start-up refuses the published sandbox credentials.
WISE_API_TOKEN = "wise-chaos-suite-token"
DJANGO_SECRET_KEY = "chaos-suite-secret-key-not-a-published-default-0123456789"
# The clients give up after this; "timeout_after_commit" answers later. Well above any healthy answer
# on a busy machine: a healthy call that timed out would be one more resend than a scenario counts.
PROVIDER_TIMEOUT_SECONDS = 5
QUEUE = "celery"


def database_url(settings_dict: dict[str, Any]) -> str:
    """DATABASE_URL for the children, from the test process's own (test database) settings."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


class StandIn:
    """A stand-in process, driven over its /__sandbox__/ control endpoints."""

    def __init__(self, provider: str, *, env: dict[str, str], log_dir: Path) -> None:
        self.provider = provider
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(VENV_BIN / "python"), "-m", "sandbox", provider, "--port", str(self.port)]
        self.child = Child(f"standin-{provider}", argv, env=env, log_dir=log_dir)

    def wait_ready(self, timeout: float = 120) -> None:
        wait_for(http_ready(f"{self.url}/__sandbox__/state"), timeout=timeout, what=f"the {self.provider} stand-in")

    def _control(self, method: str, action: str, body: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}/__sandbox__/{action}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def requests(self, method: str | None = None, path_regex: str | None = None) -> list[dict[str, Any]]:
        """The stand-in's own record of what it was asked, oldest first (with the fault it answered)."""
        recorded = self._control("GET", "requests")
        return [
            r
            for r in recorded
            if (method is None or r["method"] == method) and (path_regex is None or re.search(path_regex, r["path"]))
        ]

    def state(self) -> dict[str, Any]:
        return self._control("GET", "state")

    def fault(self, method: str, path: str, mode: str, *, times: int = 1, delay: float = 3.0) -> None:
        self._control("POST", "faults", {"method": method, "path": path, "mode": mode, "times": times, "delay": delay})

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, timeout=30)


@dataclass
class Worker:
    name: str
    child: Child
    killed: bool = False

    def pool_children(self) -> list[int]:
        return self.child.descendants()


@dataclass
class ChaosStack:
    """Starts everything in parallel, waits until each part answers, and stops it all on exit."""

    db_url: str
    redis_url: str
    log_dir: Path
    workers_wanted: int = 2
    gunicorn_workers: int = 4
    standins: dict[str, StandIn] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    beats: list[Child] = field(default_factory=list)
    site: Child | None = None
    site_url: str = ""
    wise_public_key: str = ""
    mailbox: Path = field(init=False)
    _worker_serial: int = 0

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.mailbox = self.log_dir / "mailbox"
        self.mailbox.mkdir(exist_ok=True)
        self.redis = redis.Redis.from_url(self.redis_url)
        self.celery = Celery("chaos-beat", broker=self.redis_url, set_as_current=False)
        self.celery.conf.broker_connection_retry_on_startup = True

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "ChaosStack":
        self.redis.flushdb()  # no message, unacked delivery or mutex left from an earlier run
        site_port = free_port()
        self.site_url = f"http://127.0.0.1:{site_port}"
        key_file = self._wise_keypair()
        standin_env = {
            **self._base_env(),
            "WISE_STANDIN_KEY_FILE": str(key_file),
            "WISE_STANDIN_WEBHOOK_URL": f"{self.site_url}/api/wise/webhook/",
            "WISE_STANDIN_AUTO_COMPLETE_SECONDS": "0",  # the tests move transfers on, via the control API
            "STRIPE_STANDIN_API_KEY": STRIPE_SECRET_KEY,
            "WISE_API_TOKEN": WISE_API_TOKEN,  # what the Wise stand-in accepts
        }
        for provider in ("wise", "square", "stripe"):
            self.standins[provider] = StandIn(provider, env=standin_env, log_dir=self.log_dir)
        argv = [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi",
            "-w",
            str(self.gunicorn_workers),
            "-b",
            f"127.0.0.1:{site_port}",
            "--graceful-timeout",
            "3",
            "--timeout",
            "60",
        ]
        self.site = Child("gunicorn", argv, env=self.env(), log_dir=self.log_dir)
        for _ in range(self.workers_wanted):
            self.start_worker(wait=False)
        for standin in self.standins.values():
            standin.wait_ready()
        wait_for(http_ready(f"{self.site_url}/admin/login/"), timeout=180, what="gunicorn")
        self._warm_site()
        for worker in self.workers:
            self.wait_worker_ready(worker)
        return self

    def _children(self) -> list[Child]:
        children = [*self.beats, *(w.child for w in self.workers), *(s.child for s in self.standins.values())]
        return [*children, self.site] if self.site else children

    def stop(self) -> None:
        children = self._children()
        with ThreadPoolExecutor(max_workers=max(len(children), 1)) as pool:
            list(pool.map(lambda child: child.stop(), children))
        with contextlib.suppress(redis.RedisError):
            self.redis.flushdb()
        self.redis.close()

    def leftovers(self) -> list[str]:
        """Live processes (zombies aside) still in a child's process group: after stop() there must be none."""
        groups = {child.pid: child.name for child in self._children()}
        return [f"{groups[group]}: pid {pid}" for pid, group in live_process_groups().items() if group in groups]

    def tails(self, lines: int = 30) -> str:
        return "\n".join(f"----- {c.name} (pid {c.pid}) -----\n{c.tail(lines)}" for c in self._children())

    # --- environment ----------------------------------------------------------------------------
    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def env(self) -> dict[str, str]:
        """What the site and the workers run with: config.settings, configured by the environment."""
        wise, square, stripe = (self.standins[p] for p in ("wise", "square", "stripe"))
        return {
            **self._base_env(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": DJANGO_SECRET_KEY,
            "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback
            "DATABASE_URL": self.db_url,
            "CELERY_BROKER_URL": self.redis_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_BACKEND": "tests.chaos.mailbox.EmailBackend",
            "CHAOS_MAILBOX": str(self.mailbox),
            "LOG_LEVEL": "INFO",
            "WISE_API_URL": wise.url,
            "WISE_API_TOKEN": WISE_API_TOKEN,
            "WISE_WEBHOOK_PUBLIC_KEY": self.wise_public_key,
            "WISE_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS),
            # The redispatch sweeper treats any unfunded processing payout as stuck at once: the
            # suite sends its ticks right after a kill instead of waiting out the 5 min grace.
            "PAYOUT_DISPATCH_GRACE_MINUTES": "0",
            "SQUARE_BASE_URL": square.url,
            "SQUARE_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS),
            # The POS lease is derived (pos_sync.leases): one search page, then the two creates, at
            # 5 s per httpx phase: 3 x 20 s + 60 s = 2 min (what --chaos-long waits out).
            "POS_SYNC_SEARCH_MAX_PAGES": "1",
            "STRIPE_API_BASE": stripe.url,
            "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
            "STRIPE_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS),
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
        }

    def _wise_keypair(self) -> Path:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file = self.log_dir / "wise_key.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        (self.log_dir / "wise_standin_public.pem").write_bytes(public)  # beside the key, as the stand-in expects
        self.wise_public_key = public.decode()
        return key_file

    def _warm_site(self) -> None:
        """Touch every gunicorn worker once, so none is still importing Django when a race starts."""
        with ThreadPoolExecutor(max_workers=self.gunicorn_workers * 2) as pool:
            list(pool.map(lambda _: httpx.get(f"{self.site_url}/admin/login/", timeout=30), range(16)))

    # --- Celery workers -------------------------------------------------------------------------
    def start_worker(self, *, wait: bool = True) -> Worker:
        self._worker_serial += 1
        name = f"w{self._worker_serial}"
        argv = [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--concurrency=1",
            "-P",
            "prefork",
            "-n",
            f"{name}@%h",
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        worker = Worker(name, Child(f"celery-{name}", argv, env=self.env(), log_dir=self.log_dir))
        self.workers.append(worker)
        if wait:
            self.wait_worker_ready(worker)
        return worker

    def wait_worker_ready(self, worker: Worker, timeout: float = 180) -> None:
        def ready() -> bool:
            if not worker.child.alive():
                raise RuntimeError(f"{worker.name} exited:\n{worker.child.tail()}")
            return " ready." in worker.child.log() and bool(worker.pool_children())

        wait_for(ready, timeout=timeout, what=f"Celery worker {worker.name}")

    @property
    def live_workers(self) -> list[Worker]:
        return [w for w in self.workers if not w.killed and w.child.alive()]

    def kill_pool_child(self, pid: int) -> None:
        """SIGKILL the process running the task: Celery's main process sees the worker lost."""
        os.kill(pid, signal.SIGKILL)

    def kill_worker(self, worker: Worker) -> None:
        """SIGKILL the whole worker (main process and pool child), as when its host dies."""
        worker.killed = True
        worker.child.kill_group(signal.SIGKILL)
        worker.child.process.wait(10)

    def log_marks(self) -> dict[str, int]:
        """Where every worker's log ends now: busy_worker() reads only what comes after."""
        return {w.name: len(w.child.log()) for w in self.workers}

    def busy_worker(
        self, task_name: str, marks: dict[str, int], *, port: int, timeout: float = 120
    ) -> tuple[Worker, str, int]:
        """The live worker running `task_name` (received after `marks`, not finished) whose pool child
        is in a call to `port`: (worker, task id, pool child pid)."""
        marker = f"Task {task_name}["

        def running(worker: Worker) -> list[str]:
            received, finished = [], set()
            for line in worker.child.log()[marks.get(worker.name, 0) :].splitlines():
                if marker in line:
                    task_id, _, rest = line.split(marker, 1)[1].partition("]")
                    (received.append if rest.startswith(" received") else finished.add)(task_id)
            return [task_id for task_id in received if task_id not in finished]

        def find() -> tuple[Worker, str, int] | None:
            for worker in self.live_workers:
                tasks = running(worker)
                calling = [pid for pid in worker.pool_children() if connected_to(pid, port)]
                if tasks and calling:
                    return worker, tasks[0], calling[0]
            return None

        what = f"a worker running {task_name} in a call to {port}"
        return wait_for(find, timeout=timeout, what=what)  # type: ignore[return-value]

    def task_results(self, task_name: str) -> list[Any]:
        """What every run of `task_name` returned (a flat dict or a scalar), from the workers'
        "Task <name>[<id>] succeeded in <t>s: <result>" log lines, whatever the log format around them."""
        pattern = re.compile(rf"Task {re.escape(task_name)}\[[^\]]+\] succeeded in [0-9.e-]+s: (\{{[^{{}}]*\}}|\S+)")
        results = []
        for worker in self.workers:
            for match in pattern.finditer(worker.child.log()):
                with contextlib.suppress(ValueError, SyntaxError):
                    results.append(ast.literal_eval(match.group(1)))
        return results

    def deliveries(self, task_id: str) -> int:
        """How many times any worker received the message `task_id` (a redelivery counts again)."""
        return sum(w.child.log().count(f"[{task_id}] received") for w in self.workers)

    def start_beat(self, name: str, *, start: float, every: float, ticks: int, tasks: list[str]) -> Child:
        """A beat scheduler process (tests/chaos/beat.py) ticking at shared instants from `start`."""
        argv = [str(VENV_BIN / "python"), "-m", "tests.chaos.beat", "--name", name, "--broker", self.redis_url]
        argv += ["--start", repr(start), "--every", repr(every), "--ticks", str(ticks)]
        for task in tasks:
            argv += ["--task", task]
        child = Child(f"beat-{name}", argv, env=self._base_env(), log_dir=self.log_dir)
        self.beats.append(child)
        return child

    # --- broker ---------------------------------------------------------------------------------
    def send_task(self, name: str, *args: Any) -> None:
        """A beat tick, or any producer: one message on the broker."""
        self.celery.send_task(name, args=list(args))

    def queued(self) -> int:
        return int(self.redis.llen(QUEUE))

    def unacked(self) -> int:
        """Messages delivered to a worker and not yet acknowledged (running, reserved or orphaned)."""
        return int(self.redis.hlen("unacked"))

    def broker_idle(self) -> bool:
        return self.queued() == 0 and self.unacked() == 0

    def expire_visibility_timeout(self, *, orphans: int) -> int:
        """Simulate the broker's visibility_timeout running out: kombu's own restore puts the
        unacknowledged deliveries back on the queue. Only when the `orphans` messages of killed
        workers are all that is unacknowledged (a live worker's delivery must not be doubled)."""
        wait_for(
            lambda: self.queued() == 0 and self.unacked() == orphans,
            timeout=120,
            what=f"only {orphans} orphaned deliveries left on the broker",
        )
        with Connection(self.redis_url, transport_options={"visibility_timeout": 0}) as connection:
            channel = connection.default_channel
            time.sleep(0.01)  # restore_visible takes deliveries strictly older than now - timeout
            channel.qos.restore_visible(num=100, interval=1)
        return orphans

    # --- the site -------------------------------------------------------------------------------
    def api(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.site_url,
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=60,
        )

    def mails(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.mailbox.glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                found.append(json.loads(path.read_text()))
        return found
