"""console: the web console's page times among 10,000 agents and 1,000,000 messages, live-update lag, tabs' CPU.

Each page is fetched as a signed-in admin, one request at a time, beside the catalog call that page is built on, over
REST (so the page's own cost — templates, several calls — shows as the difference). Live lag: from a message sent to
the moment an open messages tail receives it. Tabs: hub CPU with 100 console tabs open (100 sessions, each streaming
the messages tail) against the same workload without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..bench import Bench, call_hub
from ..http import Connection, build_request
from ..report import ValueRecord, at_most
from ..servers import Server, hub_server
from ..stores import StoreProvider
from .query import seed

NAME = "console"
TARGET_PAGE_P95_MS = 300.0
TARGET_LAG_MS = 1000.0
MESSAGES = {False: 1_000_000, True: 20_000}  # by --quick
BATCH = 1000
WORDS = ["invoice", "shipment", "refund", "alert", "report", "forecast", "audit", "backup", "deploy", "review"]
SAMPLES = {False: 40, True: 10}
TABS = 100
LOAD_SECONDS = {False: 20.0, True: 6.0}
LOAD_RATE = 20  # messages/s while the tabs are open


def _url(hub: Server, path: str) -> str:
    return f"http://127.0.0.1:{hub.port}{path}"


def sign_in(hub: Server, key: str) -> httpx.Client:
    """A console session (its cookies), as a browser gets one."""
    client = httpx.Client(base_url=_url(hub, ""), timeout=60, follow_redirects=False)
    answer = client.post("/ui/sign-in", data={"key": key, "next": "/ui"})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return client


async def _seed_messages(hub: Server, tokens: list[str], recipients: list[str], count: int, progress: Progress) -> float:
    """``count`` messages from the senders to the recipients, ``BATCH`` per send_batch call, 8 connections."""
    bar = progress.add_task(f"{NAME}: storing {count:,} messages", total=count)
    numbers = itertools.count()

    async def connection_loop(token: str) -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        async with Connection(hub.port) as conn:
            while (first := next(numbers) * BATCH) < count:
                batch = [
                    {"to_agent": recipients[n % len(recipients)], "message_type": "note",
                     "content": {"text": f"{WORDS[n % len(WORDS)]} number {n}", "n": n}}
                    for n in range(first, min(first + BATCH, count))
                ]  # fmt: skip
                raw = build_request("POST", "/agora/messaging/send_batch", hub.port, headers, json.dumps({"messages": batch}).encode())
                status, body = await conn.send(raw)
                if status != 200:
                    raise RuntimeError(f"send_batch answered {status}: {body[:300]!r}")
                progress.advance(bar, len(batch))

    started = time.perf_counter()
    await asyncio.gather(*(connection_loop(tokens[i % len(tokens)]) for i in range(8)))
    return count / (time.perf_counter() - started)


def _timed(fetch: Any, samples: int) -> tuple[float, float]:
    """p50 and p95 (ms) of ``samples`` sequential calls of ``fetch`` (after one warm-up)."""
    fetch()
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        fetch()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


@dataclass(frozen=True)
class PageCase:
    label: str
    path: str
    tool: str  # the catalog call the page is built on, timed beside it over REST
    args: dict[str, Any]


def page_cases(agent_id: str, sender: str, recipient: str, task_id: str) -> list[PageCase]:
    return [
        PageCase("overview", "/ui", "agora.query.activity", {"minutes": 60}),
        PageCase("agents", "/ui/agents", "agora.query.agents", {"include_load": True, "limit": 50}),
        PageCase("agents ?q=cap-7", "/ui/agents?q=cap-7", "agora.query.agents", {"text": "cap-7", "include_load": True, "limit": 50}),
        PageCase("agents by name", "/ui/agents?sort=name", "agora.query.agents", {"sort": "name", "include_load": True, "limit": 50}),
        PageCase("an agent", f"/ui/agents/{agent_id}", "agora.agents.get", {"agent": agent_id}),
        PageCase("messages", "/ui/messages", "agora.messaging.search", {"limit": 50}),
        PageCase("messages ?from=", f"/ui/messages?from={sender}", "agora.messaging.search", {"from_agent": sender, "limit": 50}),
        PageCase("messages ?to=", f"/ui/messages?to={recipient}", "agora.messaging.search", {"to_agent": recipient, "limit": 50}),
        PageCase("messages ?q=refund", "/ui/messages?q=refund", "agora.messaging.search", {"text": "refund", "limit": 50}),
        PageCase("messages ?q= (no match)", "/ui/messages?q=zyzzyva", "agora.messaging.search", {"text": "zyzzyva", "limit": 50}),
        PageCase("tasks", "/ui/tasks", "agora.task.list", {"limit": 50}),
        PageCase("a task", f"/ui/tasks/{task_id}", "agora.task.get", {"task_id": task_id}),
        PageCase("workflows", "/ui/workflows", "agora.workflow.list", {"limit": 50}),
        PageCase("marketplace", "/ui/marketplace", "agora.marketplace.discover", {}),
        PageCase("billing", "/ui/billing", "agora.billing.invoice", {}),
        PageCase("mcp", "/ui/mcp", "agora.mcp_servers.list", {}),
        PageCase("send", "/ui/send", "agora.query.agents", {"limit": 1}),
        PageCase("admin keys", "/ui/admin/keys", "agora.admin.keys.list", {}),
        PageCase("admin audit", "/ui/admin/audit", "agora.admin.audit", {"limit": 50}),
    ]  # fmt: skip


def measure_pages(bench: Bench, store: StoreProvider, hub: Server, key: str, cases: list[PageCase], samples: int) -> None:
    api = httpx.Client(base_url=_url(hub, ""), headers={"Authorization": f"Bearer {key}"}, timeout=60)
    with contextlib.closing(sign_in(hub, key)) as browser, api:
        for case in cases:

            def page() -> None:
                answer = browser.get(case.path)
                if answer.status_code != 200:
                    raise RuntimeError(f"{case.path} answered {answer.status_code}")

            def tool() -> None:
                answer = api.post("/" + case.tool.replace(".", "/"), json=case.args)
                if answer.status_code != 200:
                    raise RuntimeError(f"{case.tool} answered {answer.status_code}: {answer.text[:200]}")

            p50, p95 = _timed(page, samples)
            tool_p50, tool_p95 = _timed(tool, samples)
            bench.step(f"{NAME}: {case.path}: p50 {p50:.1f} ms, p95 {p95:.1f} ms; {case.tool} p95 {tool_p95:.1f} ms")
            bench.add(
                ValueRecord(
                    NAME, store.kind.value, f"page {case.label}", p95, "ms p95",
                    at_most(p95, TARGET_PAGE_P95_MS, f"≤ {TARGET_PAGE_P95_MS:g} ms"),
                    notes=f"p50 {p50:.1f} ms; {case.tool} over REST p95 {tool_p95:.1f} ms (p50 {tool_p50:.1f})",
                )
            )  # fmt: skip


@contextlib.contextmanager
def live_tail(hub: Server, browser: httpx.Client, query: str) -> Iterator[list[tuple[float, str]]]:
    """An open messages tail: (arrival time, data) of each ``messages`` event, appended by a reader thread."""
    arrivals: list[tuple[float, str]] = []
    stop = threading.Event()
    opened = threading.Event()

    def read() -> None:
        with browser.stream("GET", f"/ui/live/messages?{query}", timeout=None) as stream:
            opened.set()
            event = ""
            for line in stream.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "messages":
                    arrivals.append((time.perf_counter(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    opened.wait(10)
    try:
        yield arrivals
    finally:
        stop.set()


def measure_lag(bench: Bench, store: StoreProvider, hub: Server, key: str, sender_token: str, recipient: str, samples: int) -> None:
    with contextlib.closing(sign_in(hub, key)) as browser, live_tail(hub, browser, f"to={recipient}") as arrivals:
        time.sleep(1.0)  # the first render
        lags = []
        for n in range(samples):
            marker = f"lag-probe-{n}-{time.time_ns()}"
            sent = time.perf_counter()
            call_hub(hub, sender_token, "/agora/messaging/send", {"to_agent": recipient, "content": {"text": marker}})
            deadline = sent + 10
            while not any(marker in data for _, data in arrivals) and time.perf_counter() < deadline:
                time.sleep(0.002)
            seen = next((at for at, data in arrivals if marker in data), None)
            if seen is None:
                raise RuntimeError(f"message {n} did not reach the live tail within 10 s")
            lags.append((seen - sent) * 1000)
            time.sleep(0.3)
    lags.sort()
    p95 = lags[min(len(lags) - 1, int(len(lags) * 0.95))]
    bench.add(
        ValueRecord(
            NAME, store.kind.value, "live lag: message sent → shown in an open tail", p95, "ms p95",
            at_most(p95, TARGET_LAG_MS, f"≤ {TARGET_LAG_MS:g} ms"), notes=f"median {statistics.median(lags):.0f} ms, {len(lags)} messages",
        )
    )  # fmt: skip


async def _open_tabs(hub: Server, key: str, paths: list[str], stop: asyncio.Event) -> None:
    """A console tab (a session each) per path, streaming that live view until ``stop``."""

    async def tab(path: str) -> None:
        async with httpx.AsyncClient(base_url=_url(hub, ""), timeout=None) as client:
            answer = await client.post("/ui/sign-in", data={"key": key, "next": "/ui"})
            if answer.status_code != 303:
                raise RuntimeError(f"sign-in answered {answer.status_code}")
            async with client.stream("GET", path) as stream:
                reading = asyncio.ensure_future(_drain(stream))
                await stop.wait()
                reading.cancel()

    await asyncio.gather(*(tab(path) for path in paths))


async def _drain(stream: httpx.Response) -> None:
    """Read a tab's SSE stream as a browser would, keeping nothing: what the hub spends sending is what is measured."""
    async for _ in stream.aiter_raw():
        continue


def _workload_cpu(hub: Server, token: str, recipients: list[str], seconds: float) -> float:
    """Hub CPU seconds while ``LOAD_RATE`` messages a second are sent for ``seconds``, to each recipient in turn."""
    before = hub.cpu_seconds()
    with httpx.Client(base_url=_url(hub, ""), headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        started = time.perf_counter()
        for n in range(int(seconds * LOAD_RATE)):
            api.post("/agora/messaging/send", json={"to_agent": recipients[n % len(recipients)], "content": {"text": f"tab load {n}"}})
            time.sleep(max(0.0, started + (n + 1) / LOAD_RATE - time.perf_counter()))
    return hub.cpu_seconds() - before


def measure_tabs(bench: Bench, store: StoreProvider, hub: Server, key: str, token: str, recipients: list[str], seconds: float) -> None:
    """Hub CPU with ``TABS`` tabs open while ``LOAD_RATE`` messages a second are sent to ``TABS`` agents in turn,
    against the sends alone: every tab on the whole tail (each message wakes them all; they share their reads), then
    each tab on one of the agents' messages (woken by its agent's alone)."""
    others = recipients[:TABS]
    without = _workload_cpu(hub, token, others, seconds)
    layouts = {
        "all on the whole tail": ["/ui/live/messages"] * TABS,
        "each on one agent's messages": [f"/ui/live/messages?to={agent}" for agent in others],
    }
    for layout, paths in layouts.items():
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        tabs = threading.Thread(target=loop.run_until_complete, args=(_open_tabs(hub, key, paths, stop),), daemon=True)
        tabs.start()
        time.sleep(5)  # every tab signed in and rendered once
        idle_before = hub.cpu_seconds()
        time.sleep(seconds)
        idle = hub.cpu_seconds() - idle_before
        with_tabs = _workload_cpu(hub, token, others, seconds)
        loop.call_soon_threadsafe(stop.set)
        tabs.join(30)
        extra = (with_tabs - without) / seconds
        bench.add(
            ValueRecord(
                NAME, store.kind.value, f"{len(paths)} open tabs, {layout}, {LOAD_RATE} messages/s",
                extra * 100, "% of a core",
                notes=f"hub CPU {with_tabs / seconds * 100:.0f}% with the tabs vs {without / seconds * 100:.0f}% without; idle tabs {idle / seconds * 100:.1f}%",
            )
        )  # fmt: skip


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    quick = bench.profile.agents < 10_000
    spec = store.fresh()
    with hub_server(spec) as hub:
        seed(bench, hub, spec)
        key = spec.admin_key
        senders = [call_hub(hub, key, "/agora/agents/register", {"agent_name": f"console-sender-{i}"}) for i in range(4)]
        recipients = [call_hub(hub, key, "/agora/agents/register", {"agent_name": f"console-inbox-{i}"})["agent_id"] for i in range(100)]
        with Progress(
            TextColumn("[dim]· {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=bench.console, transient=True,
        ) as progress:  # fmt: skip
            rate = asyncio.run(_seed_messages(hub, [s["agent_token"] for s in senders], recipients, MESSAGES[quick], progress))
        bench.step(f"{NAME}: {MESSAGES[quick]:,} messages stored ({rate:,.0f}/s)")
        task = call_hub(hub, key, "/agora/task/assign", {"task_type": "console.bench", "assignee": recipients[0], "payload": {}})
        cases = page_cases(recipients[0], senders[0]["agent_id"], recipients[1], task["task_id"])
        measure_pages(bench, store, hub, key, cases, SAMPLES[quick])
        measure_lag(bench, store, hub, key, senders[0]["agent_token"], recipients[2], SAMPLES[quick])
        measure_tabs(bench, store, hub, key, senders[1]["agent_token"], recipients, LOAD_SECONDS[quick])
