"""The A2A door's fast path answers exactly as the SDK does.

A corpus of SendMessage requests (plain ones the fast path keeps, and shapes it leaves to the SDK) goes to a hub with
the fast path and to one without it, each with the same agent; the answers must match byte for byte once the ids and
times the hubs made up are written as placeholders. The hub's metrics show which requests the
fast path kept, so the comparison cannot pass by the fast path serving nothing. The printer itself is compared with
protobuf's on documents made to reach its corners (timestamps' fractions, empty fields, any character)."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from google.protobuf.json_format import MessageToDict, ParseDict

from a2a.types import a2a_pb2 as pb
from agora.transports.a2a import fast
from agora_sdk import Agent
from agora_sdk.wire.common import iso_utc

from .hubproc import HubProcess
from .test_agent_channel import metric, started

AGENT = "corpus"
FAST_SAMPLE = 'agora_a2a_jsonrpc_requests_total{path="fast"}'
SDK_SAMPLE = 'agora_a2a_jsonrpc_requests_total{path="sdk"}'
MADE_UP_ID = re.compile(r"\b(a2a|ctx|msg|art)_[0-9a-f]{24}\b")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, HubProcess]]:
    fast_hub = HubProcess(tmp_path_factory.mktemp("a2a-fast")).start()
    sdk_hub = HubProcess(tmp_path_factory.mktemp("a2a-sdk"), extra_args=["--no-a2a-fast-path"]).start()
    yield fast_hub, sdk_hub
    sdk_hub.stop()
    fast_hub.stop()


def corpus_agent(hub: HubProcess) -> Agent:
    """The same agent on each hub: what it does with a turn is named by the turn's text."""
    agent = Agent(AGENT, url=hub.url, api_key=hub.admin_key, a2a="public")

    @agent.on_a2a()
    async def answer(turn: Any) -> Any:
        text = turn.text
        if text.startswith("reply:"):
            return await turn.reply(text.removeprefix("reply:"))
        if text == "data":
            return await turn.reply("with data", data={"n": 1, "f": 1.5, "s": "ß", "none": None})
        if text == "artifact":
            await turn.artifact("made")
            return "done"
        if text == "fail":
            return await turn.fail("no ✗")
        if text == "ask":
            return await turn.input_required("more?")
        if text == "silent":
            return await turn.complete()
        return f"echo: {text}"

    return agent


@pytest.fixture(scope="module")
async def agents(hubs: tuple[HubProcess, HubProcess]) -> AsyncIterator[None]:
    running = [corpus_agent(hub) for hub in hubs]
    for agent in running:
        await started(agent)
    yield
    for agent in running:
        await agent.stop()


def send(message: dict[str, Any], request_id: Any = 1, **params: Any) -> bytes:
    body = {"jsonrpc": "2.0", "id": request_id, "method": "SendMessage", "params": {"message": message, **params}}
    return json.dumps(body, ensure_ascii=False).encode()


def text(value: str, **more: Any) -> dict[str, Any]:
    return {"messageId": "m-corpus", "role": "ROLE_USER", "parts": [{"text": value}], **more}


V1 = {"A2A-Version": "1.0"}
# name -> (body, headers, who answers it on the fast hub)
CORPUS: dict[str, tuple[bytes, dict[str, str], str]] = {
    "plain": (send(text("hello")), V1, "fast"),
    "a string id": (send(text("hello"), request_id="id-ü"), V1, "fast"),
    "non-ASCII and control characters": (send(text('héllo ☃ 😀 \u0001\u001f\u007f\u2028 \n\t "q" \\ </b>')), V1, "fast"),
    "no messageId, no role": (send({"parts": [{"text": "bare"}]}), V1, "fast"),
    "an empty messageId": (send(text("empty id", messageId="")), V1, "fast"),
    "several parts, one empty": (send({"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a"}, {"text": ""}, {"text": "c"}]}), V1, "fast"),
    "extensions and reference ids": (send(text("refs", extensions=["https://x.example/ext"], referenceTaskIds=["t-1", "t-2"])), V1, "fast"),
    "empty lists": (send(text("empty lists", extensions=[], referenceTaskIds=[])), V1, "fast"),
    "the caller's context": (send(text("in context", contextId="ctx-corpus-1")), V1, "fast"),
    "answered with a message": (send(text("reply:just this")), V1, "fast"),
    "answered with a data part (protobuf prints it)": (send(text("data")), V1, "fast"),
    "answered with an artifact (protobuf prints it)": (send(text("artifact")), V1, "fast"),
    "failed": (send(text("fail")), V1, "fast"),
    "completed without a message": (send(text("silent")), V1, "fast"),
    "an unknown task": (send(text("more", taskId="a2a_000000000000000000000000")), V1, "fast"),
    "a duplicated key (the last one counts)": (send(text("dup")).replace(b'"id": 1', b'"id": 1, "id": 2'), V1, "fast"),
    "a role given by number": (send(text("hello", role=1)), V1, "sdk"),
    "an unspecified role": (send(text("hello", role="ROLE_UNSPECIFIED")), V1, "sdk"),
    "metadata": (send(text("with metadata", metadata={"k": 1})), V1, "sdk"),
    "a data part": (send({"messageId": "m", "role": "ROLE_USER", "parts": [{"data": {"x": 1}}]}), V1, "sdk"),
    "a configuration": (send(text("later"), configuration={"returnImmediately": True}), V1, "sdk"),
    "no parts": (send({"messageId": "m", "role": "ROLE_USER", "parts": []}), V1, "sdk"),
    "an unknown message field": (send(text("hello", surprise=True)), V1, "sdk"),
    "NaN (orjson refuses it, the SDK reads it)": (send(text("nan")).replace(b'"role"', b'"x": NaN, "role"'), V1, "sdk"),
    "a float id": (send(text("hello"), request_id=1.5), V1, "sdk"),
    "a boolean id": (send(text("hello"), request_id=True), V1, "sdk"),
    "no id": (send(text("hello")).replace(b'"id": 1, ', b""), V1, "sdk"),
    "an extra envelope member": (send(text("hello")).replace(b'"jsonrpc"', b'"extra": 1, "jsonrpc"'), V1, "sdk"),
    "A2A-Version 1.0.0": (send(text("hello")), {"A2A-Version": "1.0.0"}, "sdk"),
    "no A2A-Version (0.3)": (send(text("hello")), {}, "sdk"),
    "another method": (send(text("hello")).replace(b"SendMessage", b"GetTask"), V1, "sdk"),
    "not JSON": (b'{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", ', V1, "sdk"),
}


def comparable(response: httpx.Response) -> tuple[int, str, str]:
    """Status, content type and body, with the ids and times a hub made up written as placeholders. (A time's printed
    fraction depends on the time itself: 3 digits for whole milliseconds. The printer test checks how it is printed.)"""
    names: dict[str, str] = {}
    body = MADE_UP_ID.sub(lambda m: names.setdefault(m.group(0), f"{m.group(1)}_<{len(names)}>"), response.text)
    body = TIME.sub("<time>", body)
    return response.status_code, response.headers.get("content-type", ""), body


def alike(one: httpx.Response, other: httpx.Response) -> bool:
    """The same answer: byte for byte, except that the keys of a Struct (a data part) come in an order protobuf's
    printer draws afresh in each process (the SDK's own answers differ so from one hub to the next)."""
    mine, theirs = comparable(one), comparable(other)
    if mine == theirs:
        return True
    with_struct = '"data":{' in mine[2] and '"data":{' in theirs[2]
    return with_struct and mine[:2] == theirs[:2] and json.loads(mine[2]) == json.loads(theirs[2])


async def test_the_fast_path_answers_every_request_as_the_sdk_does(hubs: tuple[HubProcess, HubProcess], agents: None) -> None:
    fast_hub, sdk_hub = hubs
    before = {hub.url: (metric(hub, FAST_SAMPLE), metric(hub, SDK_SAMPLE)) for hub in hubs}
    mismatches = []
    kept = {"fast": 0, "sdk": 0}
    async with httpx.AsyncClient(timeout=30) as http:

        async def post(hub: HubProcess, body: bytes, headers: dict[str, str]) -> httpx.Response:
            auth = {"Authorization": f"Bearer {hub.admin_key}", "Content-Type": "application/json"}
            return await http.post(f"{hub.url}/a2a/agents/{AGENT}", content=body, headers=auth | headers)

        cases = list(CORPUS.items())
        # A follow-up to a task waiting for input (its history grows), and one to a finished task (refused).
        for hub_answers in [await asyncio.gather(*(post(hub, send(text(word)), V1) for hub in hubs)) for word in ("ask", "hello")]:
            task_ids = [answer.json()["result"]["task"]["id"] for answer in hub_answers]
            cases.append((f"a follow-up ({hub_answers[0].json()['result']['task']['status']['state']})", ([send(text("then", taskId=t)) for t in task_ids], V1, "fast")))
        for name, (body, headers, path) in cases:
            bodies = body if isinstance(body, list) else [body, body]
            answers = [await post(hub, b, headers) for hub, b in zip(hubs, bodies)]
            if not alike(*answers):
                mismatches.append(f"{name}:\n  fast: {comparable(answers[0])}\n  sdk:  {comparable(answers[1])}")
            kept[path] += 1
    assert not mismatches, "\n".join(mismatches)
    assert metric(fast_hub, FAST_SAMPLE) - before[fast_hub.url][0] == kept["fast"] + 2  # and the two tasks followed up
    assert metric(fast_hub, SDK_SAMPLE) - before[fast_hub.url][1] == kept["sdk"]
    assert metric(sdk_hub, FAST_SAMPLE) == 0


def test_the_printer_prints_documents_as_protobuf_does() -> None:
    """Tasks and messages as the A2A service stores them, printed here and by protobuf: identical, or refused (and
    then printed by protobuf on the fast path too)."""
    rng = random.Random(7)
    alphabet = "aZ09 é☃😀\u0000\u001f\"\\/\u2028\n"

    def string() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 5)))

    def message() -> dict[str, Any]:
        candidate: dict[str, Any] = {"parts": [{"text": string()} for _ in range(rng.randrange(0, 3))]}
        for key in ("messageId", "contextId", "taskId"):
            if rng.random() < 0.7:
                candidate[key] = string()
        if rng.random() < 0.8:
            candidate["role"] = rng.choice(["ROLE_USER", "ROLE_AGENT"])
        for key in ("extensions", "referenceTaskIds"):
            if rng.random() < 0.3:
                candidate[key] = [string() for _ in range(rng.randrange(0, 3))]
        return candidate

    micros = [0, 1, 100, 999, 1000, 120000, 123000, 123456, 999999]
    printed = refused = 0
    for index in range(600):
        at = datetime(2026, 11, 27, 0, 21, 34, micros[index % len(micros)], tzinfo=UTC)
        status: dict[str, Any] = {"state": rng.choice([s for s in pb.TaskState.keys() if s != "TASK_STATE_UNSPECIFIED"]), "timestamp": iso_utc(at)}
        if rng.random() < 0.7:
            status["message"] = message()
        document: dict[str, Any] = {"id": string(), "contextId": string(), "status": status, "history": [message() for _ in range(rng.randrange(0, 3))]}
        if rng.random() < 0.1:
            document["metadata"] = {"n": 1}
        expected = MessageToDict(ParseDict(document, pb.Task()))
        try:
            mine = fast._task(document)
        except fast.NotPlain:
            refused += 1
            assert "metadata" in document
            continue
        printed += 1
        assert mine == expected and list(mine) == list(expected), (document, mine, expected)
        assert json.dumps(mine, ensure_ascii=False, separators=(",", ":")) == json.dumps(expected, ensure_ascii=False, separators=(",", ":"))
    assert printed > 450 and refused > 20
