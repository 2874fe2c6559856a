"""chaos: faults in sequence under a steady mixed load on two replicas: a database restart, a Redis outage, a slow database and a failover.

Two hubs on a PostgreSQL primary of the benchmark's own, with a synchronous streaming standby (commits wait for it,
so it retries a lost primary every 0.5 s, not PostgreSQL's default 5 s), waking each other
through a Redis of the benchmark's own; the hubs name the primary (through a TCP proxy that can slow it) and the
standby, libpq's way (``target_session_attrs=read-write``). A steady load runs throughout, each call on either
replica in turn: an agent sending messages (each with an idempotency key), a producer assigning tasks, two workers
claiming and completing them, an A2A client sending (``SendMessage``, returning at once) to an A2A agent, and the
receiver of the messages watching its live stream (SSE on either replica, reconnecting with ``Last-Event-ID`` whenever
it breaks, acknowledging what it got). The faults, each held ``HOLD`` seconds with a quiet spell between them:

1. the primary stops (``pg_ctl -m fast``) and starts again;
2. Redis stops, then starts again on its port;
3. the database gets slow: every answer held 200 ms by the proxy;
4. the primary crashes (``-m immediate``) and the standby is promoted a second later.

Per fault: the calls made while it lasted, by answer (2xx, 429, 503, other 5xx, timeouts), and the time from its end to
the first success of every kind of call. At the end: acknowledged sends missing from the database (goal 0), tasks
whose completion was acknowledged twice (goal 0), acknowledged A2A sends whose task is missing (goal 0), acknowledged
sends the stream never showed though it resumed after every break (goal 0), and 500s over the whole run (goal 0).
PostgreSQL only (there are no
replicas on SQLite).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.faults.postgres_server import PostgresServer
from tests.faults.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

from ..bench import Bench
from ..report import ValueRecord, at_most
from ..servers import HubSpec, Server, hub_server
from ..stores import StoreKind, StoreProvider

NAME = "chaos"
HOLD = 5.0  # seconds each fault lasts
QUIET = 3.0  # seconds of plain load before and between faults
SLOW = 0.2  # seconds the slow database holds each answer
TARGET_RECOVERY_DB, TARGET_RECOVERY_REDIS = 5.0, 2.0
KINDS = ("send", "assign", "claim", "complete", "a2a")  # the calls whose recovery is timed (the stream: by its frames)
DRAIN = 15.0  # seconds the stream has, after the load stops, to show the last sends


@dataclass
class Call:
    at: float
    kind: str
    status: int  # 0: timed out or the connection failed


@dataclass
class Load:
    """The steady load's record: every call, the acknowledged sends, each task's acknowledged completions."""

    calls: list[Call] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    completed: Counter[str] = field(default_factory=Counter)
    a2a_tasks: list[str] = field(default_factory=list)
    streamed: Counter[str] = field(default_factory=Counter)  # message id -> times the live stream showed it
    resumes: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def call(self, client: httpx.Client, kind: str, tool: str, body: dict[str, Any], **options: Any) -> tuple[int, dict[str, Any] | None]:
        """The call's status (0: timed out or no connection) and, when 200, its answer; recorded. ``tool`` is a
        catalog tool's name or a path."""
        path = tool if tool.startswith("/") else f"/agora/{tool.removeprefix('agora.').replace('.', '/')}"
        try:
            answer = client.post(path, json=body, **options)
            status = answer.status_code
        except httpx.HTTPError:
            status, answer = 0, None
        self.calls.append(Call(time.monotonic(), kind, status))
        return status, answer.json() if answer is not None and status == 200 else None


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    if store.kind is not StoreKind.postgres:
        bench.step(f"{NAME}: PostgreSQL replicas only; skipped on {store.kind.value}")
        return
    if shutil.which("redis-server") is None:
        bench.step(f"{NAME}: no redis-server on PATH; skipped")
        return
    primary = PostgresServer().start()
    standby = primary.standby("wal_retrieve_retry_interval=500ms")  # back to a restarted primary within a second
    redis = RedisServer().start()
    try:
        for statement in ("ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()"):
            _psql(primary.port, statement)
        with TcpProxy(primary.port) as slow:
            url = f"postgresql://postgres@127.0.0.1:{slow.port},127.0.0.1:{standby.port}/postgres?target_session_attrs=read-write"
            _under_load(bench, store, url, redis, primary, standby, slow)
    finally:
        redis.stop()
        standby.remove()
        primary.remove()


def _psql(port: int, statement: str) -> str:
    done = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-At", "-c", statement], check=True, capture_output=True, text=True)
    return done.stdout


def _under_load(bench: Bench, store: StoreProvider, url: str, redis: RedisServer, primary: PostgresServer, standby: PostgresServer, slow: TcpProxy) -> None:
    base = store.fresh()
    channel = ("--redis-url", redis.url, "--redis-channel", f"agora:chaos:{uuid.uuid4().hex[:8]}", "--no-local-node")
    one_spec, two_spec = HubSpec(base.data_dir / "one", url), HubSpec(base.data_dir / "two", url)
    for spec in (one_spec, two_spec):
        spec.data_dir.mkdir()
    with hub_server(one_spec, *channel) as one:
        (two_spec.data_dir / "admin.key").write_text(one_spec.admin_key)
        with hub_server(two_spec, *channel) as two:
            load = Load()
            threads = _start_load(load, [one, two], one_spec.admin_key)
            faults: list[tuple[str, float, float]] = []
            time.sleep(QUIET)

            def fault(name: str, begin: Any, end: Any) -> None:
                bench.step(f"{NAME}: {name}")
                started = time.monotonic()
                begin()
                time.sleep(HOLD)
                end()
                faults.append((name, started, time.monotonic()))
                time.sleep(QUIET)

            fault("the primary restarts", lambda: primary.stop(), lambda: primary.restart(away=0))
            fault("Redis goes away", redis.stop, redis.start)
            fault("the database is slow", lambda: setattr(slow, "delay", SLOW), lambda: setattr(slow, "delay", 0.0))
            fault("the primary fails over to its standby", lambda: primary.stop("immediate"), standby.promote)
            load.stop.set()
            for thread in threads:
                thread.join(30 + DRAIN)
    stored = set(_psql(standby.port, "SELECT message_id FROM messages").split())
    tasks = set(_psql(standby.port, "SELECT task_id FROM a2a_tasks").split())
    _report(bench, load, faults, stored, tasks)


def _start_load(load: Load, hubs: list[Server], admin_key: str) -> list[threading.Thread]:
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", timeout=10) for hub in hubs]
    admin = {"Authorization": f"Bearer {admin_key}"}
    sender = clients[0].post("/agora/agents/register", json={"agent_name": "chaos-sender"}, headers=admin).json()
    sink = clients[0].post("/agora/agents/register", json={"agent_name": "chaos-sink"}, headers=admin).json()
    workers = [clients[0].post("/agora/agents/register", json={"agent_name": f"chaos-worker-{i}", "capabilities": ["chaos"]}, headers=admin).json() for i in range(2)]
    a2a_agent = clients[0].post("/agora/agents/register", json={"agent_name": "chaos-a2a", "a2a": {"access": "public"}}, headers=admin).json()

    def each(token: str) -> list[httpx.Client]:
        return [httpx.Client(base_url=str(c.base_url), timeout=10, headers={"Authorization": f"Bearer {token}"}) for c in clients]

    def send() -> None:
        mine, n = each(sender["agent_token"]), 0
        while not load.stop.is_set():
            n += 1
            _, done = load.call(mine[n % 2], "send", "agora.messaging.send", {"to_agent": sink["agent_id"], "content": {"n": n}, "idempotency_key": f"c{n}"})
            if done is not None:
                load.sent.append(done["message_id"])
            time.sleep(0.05)

    def assign() -> None:
        mine, n = each(admin_key), 0
        while not load.stop.is_set():
            n += 1
            load.call(mine[n % 2], "assign", "agora.task.assign", {"task_type": "chaos", "required_capabilities": ["chaos"], "idempotency_key": f"t{n}"})
            time.sleep(0.1)

    def work(worker: dict[str, Any], first: int) -> None:
        mine, n = each(worker["agent_token"]), first
        while not load.stop.is_set():
            n += 1
            _, claimed = load.call(mine[n % 2], "claim", "agora.task.claim", {"wait": 1, "lease_seconds": 30})
            if claimed is None or claimed.get("task") is None:
                continue
            task, token = claimed["task"]["task_id"], claimed["lease"]["token"]
            while not load.stop.is_set():  # a completion refused for an outage is tried again, as a worker would
                status, done = load.call(mine[n % 2], "complete", "agora.task.update", {"task_id": task, "lease_token": token, "status": "completed"})
                if done is not None:
                    load.completed[task] += 1
                    break
                if status not in (0, 503):
                    break  # refused for good (its lease lost): another worker has it
                time.sleep(0.2)

    def a2a() -> None:
        mine, n = each(admin_key), 0
        while not load.stop.is_set():
            n += 1
            message = {"messageId": f"chaos-{n}", "role": "ROLE_USER", "parts": [{"text": f"n={n}"}]}
            body = {"jsonrpc": "2.0", "id": n, "method": "SendMessage", "params": {"message": message, "configuration": {"returnImmediately": True}}}
            status, answer = load.call(mine[n % 2], "a2a", f"/a2a/agents/{a2a_agent['agent_id']}", body, headers={"A2A-Version": "1.0"})
            if answer is not None and "result" in answer:
                load.a2a_tasks.append(answer["result"]["task"]["id"])
            time.sleep(0.1)

    threads = [threading.Thread(target=send), threading.Thread(target=assign), threading.Thread(target=a2a)]
    threads += [threading.Thread(target=work, args=(w, i)) for i, w in enumerate(workers)]
    threads.append(threading.Thread(target=_watch, args=(load, each(sink["agent_token"]))))
    for thread in threads:
        thread.start()
    return threads


def _watch(load: Load, replicas: list[httpx.Client]) -> None:
    """The receiver's live stream: read until it breaks, then again on the other replica from the last event seen
    (``Last-Event-ID``); what it shows is acknowledged in batches. Ends once the load has stopped and every
    acknowledged send was shown (or ``DRAIN`` seconds after it stopped)."""
    last: str | None = None
    drain_until = float("inf")
    while time.monotonic() < drain_until:
        if load.stop.is_set() and drain_until == float("inf"):
            drain_until = time.monotonic() + DRAIN
        if load.stop.is_set() and set(load.sent) <= set(load.streamed):
            break
        client = replicas[load.resumes % 2]
        headers = {"Last-Event-ID": last} if last else {}
        shown: list[str] = []
        opened = False
        try:
            with client.stream("GET", "/events", params={"types": "message_received"}, headers=headers, timeout=httpx.Timeout(10, read=5)) as answer:
                load.calls.append(Call(time.monotonic(), "stream", answer.status_code))
                opened = answer.status_code == 200
                event: dict[str, str] = {}
                for line in answer.iter_lines() if opened else ():
                    if line:
                        key, _, value = line.partition(": ")
                        event[key] = value
                        continue
                    if event.get("event") == "message_received":
                        message_id = json.loads(event["data"])["message"]["message_id"]
                        load.streamed[message_id] += 1
                        shown.append(message_id)
                        last = event["id"]
                    event = {}
                    if len(shown) >= 20:
                        _acknowledge(client, shown)
                        shown = []
                    if load.stop.is_set() and set(load.sent) <= set(load.streamed):
                        break
        except httpx.HTTPError:
            if not opened:
                load.calls.append(Call(time.monotonic(), "stream", 0))
        _acknowledge(client, shown)
        load.resumes += 1
        time.sleep(0.1)


def _acknowledge(client: httpx.Client, message_ids: list[str]) -> None:
    """What the stream showed is acknowledged; if that fails it is shown again later (at least once, not lost)."""
    if message_ids:
        with contextlib.suppress(httpx.HTTPError):
            client.post("/agora/messaging/ack", json={"message_ids": message_ids})


def _report(bench: Bench, load: Load, faults: list[tuple[str, float, float]], stored: set[str], tasks: set[str]) -> None:
    for name, began, ended in faults:
        during = Counter(_answer(c.status) for c in load.calls if began <= c.at <= ended)
        recovery = max((_first_success(load.calls, kind, ended) for kind in KINDS), default=0.0)
        target = TARGET_RECOVERY_REDIS if "Redis" in name else TARGET_RECOVERY_DB
        bench.add(ValueRecord(
            NAME, "postgres", f"{name}: time to recover (every kind of call) after it ended", recovery, "s",
            at_most(recovery, target, f"≤ {target:g} s"),
            notes=f"{sum(during.values())} calls while it lasted: " + ", ".join(f"{k} {v}" for k, v in sorted(during.items())),
        ))  # fmt: skip
    lost = len(set(load.sent) - stored)
    doubled = sum(1 for n in load.completed.values() if n > 1)
    errors = sum(1 for c in load.calls if c.status >= 500 and c.status != 503)
    bench.add(ValueRecord(NAME, "postgres", "acknowledged sends missing afterwards", lost, "sends", at_most(lost, 0, "0"),
                          notes=f"{len(load.sent)} sends acknowledged over {len(load.calls)} calls"))  # fmt: skip
    bench.add(ValueRecord(NAME, "postgres", "tasks whose completion was acknowledged twice", doubled, "tasks", at_most(doubled, 0, "0"),
                          notes=f"{len(load.completed)} tasks completed"))  # fmt: skip
    lost_a2a = len(set(load.a2a_tasks) - tasks)
    bench.add(ValueRecord(NAME, "postgres", "acknowledged A2A sends whose task is missing", lost_a2a, "tasks", at_most(lost_a2a, 0, "0"),
                          notes=f"{len(load.a2a_tasks)} A2A sends acknowledged"))  # fmt: skip
    unseen = len(set(load.sent) - set(load.streamed))
    repeated = sum(1 for n in load.streamed.values() if n > 1)
    bench.add(ValueRecord(NAME, "postgres", "acknowledged sends the live stream never showed", unseen, "messages", at_most(unseen, 0, "0"),
                          notes=f"the stream resumed {load.resumes} times and showed {len(load.streamed)} messages; "
                                f"{repeated} shown again (unacknowledged when it broke: at least once)"))  # fmt: skip
    bench.add(ValueRecord(NAME, "postgres", "answers 5xx other than 503, whole run", errors, "answers", at_most(errors, 0, "0")))


def _answer(status: int) -> str:
    return {0: "timeout", 200: "2xx", 429: "429", 503: "503"}.get(status, "5xx other" if status >= 500 else str(status))


def _first_success(calls: list[Call], kind: str, after: float) -> float:
    """Seconds from ``after`` to the first success of ``kind`` (0 if its first call after was one)."""
    return next((c.at - after for c in calls if c.kind == kind and c.at >= after and c.status == 200), float("inf"))
