"""``spacetime``: a stand-in for the SpacetimeDB CLI, so that v4 agents that shell out to
``spacetime call agora-marketplace <reducer> …`` keep working, unchanged, against an Agora hub.

Seed 000's v4 marketplace was a SpacetimeDB module; its agents called its reducers through the CLI. This command is
installed with the SDK under the same name. A ``call`` to the v4 database (``agora-marketplace``) of one of the four
coordination reducers is carried out on the hub (``AGORA_URL``, ``AGORA_API_KEY``) through ``AgoraClient``; anything
else (another database or reducer, ``spacetime publish``, ``spacetime sql`` …) is handed to the real ``spacetime``
found further along ``PATH`` (never to this command itself, nor to another copy of it).

It behaves as ``spacetime call`` does: arguments are JSON values, a string one may be given bare; a reducer's success
prints nothing on stdout and exits 0; a failure prints ``Error: …`` on stderr and exits 1. What the hub made (an agent,
message, task or workflow id) is said on stderr, after ``agora:``.

Agora takes the sender of a message from the key, never from the request: to send as ``from_agent`` the shim uses that
agent's own token. It keeps the tokens it is given or mints (file ``AGORA_SPACETIME_TOKENS``, mode 0600): a
registration through the shim hands one out; otherwise one is minted with ``agora.admin.keys.create``, which takes
the hub's admin key or a tenant key with the ``admin`` scope, and an agent not registered yet is registered.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .client import AgoraClient
from .errors import AgoraError, NotFound, PermissionDenied, Unauthenticated
from .wire.messaging import PriorityLevel

NAME = "spacetime"
V4_DATABASE = "agora-marketplace"
PASSED_THROUGH = "AGORA_SPACETIME_SHIM_PASSED"  # set for the real binary: a shim that sees it was called by one
SHIM_MARKER = b"agora_sdk.spacetime"  # in the console script of every installed copy of this command
U8, U32 = 255, 2**32 - 1


class ShimError(Exception):
    """A failed call, reported as ``spacetime`` reports one."""


# -- settings ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    flag: str
    env: str
    help: str


SETTINGS = {
    "url": Setting("--agora-url", "AGORA_URL", "The hub (default http://127.0.0.1:8080)."),
    "api_key": Setting(
        "--agora-api-key", "AGORA_API_KEY",
        "The key the shim acts with: the hub's admin key (agents of the default tenant) or a tenant's key; with the "
        "admin scope it can mint tokens for agents that did not register through the shim. Default: the local hub's "
        "<AGORA_DATA_DIR or .agora>/admin.key.",
    ),
    "databases": Setting(
        "--agora-databases", "AGORA_SPACETIME_DATABASES", f"Comma-separated databases whose calls run on Agora (default {V4_DATABASE})."
    ),
    "spacetime_bin": Setting(
        "--agora-spacetime-bin", "AGORA_SPACETIME_BIN", "The real spacetime for everything else (default: the next one on PATH)."
    ),
    "tokens": Setting(
        "--agora-tokens", "AGORA_SPACETIME_TOKENS", "Where agent tokens are kept (default ~/.config/agora/spacetime-tokens.json)."
    ),
}  # fmt: skip


def take_settings(argv: list[str], environ: dict[str, str]) -> tuple[dict[str, str | None], list[str]]:
    """The shim's own settings (``--agora-x value`` or ``--agora-x=value`` anywhere, else ``AGORA_*``), and the rest of
    the command line, which is spacetime's."""
    values: dict[str, str | None] = {key: environ.get(s.env) or None for key, s in SETTINGS.items()}
    by_flag = {s.flag: key for key, s in SETTINGS.items()}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        flag, eq, value = arg.partition("=")
        if flag not in by_flag:
            rest.append(arg)
            continue
        if not eq:
            value = next(args, "")
            if not value:
                raise ShimError(f"{flag} needs a value")
        values[by_flag[flag]] = value
    return values, rest


# -- v4 reducers ------------------------------------------------------------------------------------------------------

Param = tuple[str, str]  # (name, SpacetimeDB type): String, u8 or u32


@dataclass(frozen=True)
class Reducer:
    name: str
    params: tuple[Param, ...]
    run: Callable[[Shim, list[Any]], str]  # does the call, returns what the hub made (said on stderr)

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(f'{n}: {t}' for n, t in self.params)})"

    def parse(self, database: str, args: list[str]) -> list[Any]:
        """Arguments as ``spacetime call`` reads them: JSON values, a String given bare when unquoted (or, as the CLI
        before 1.0 took them, all of them in one JSON array)."""
        if len(args) == 1 and len(self.params) > 1 and args[0].startswith("["):
            with contextlib.suppress(orjson.JSONDecodeError):
                together = orjson.loads(args[0])
                if isinstance(together, list) and len(together) == len(self.params):
                    args = [orjson.dumps(value).decode() for value in together]
        if len(args) != len(self.params):
            raise ShimError(self._invalid(database, f"{len(self.params)} parameters were expected, but {len(args)} were provided."))
        values = []
        for arg, (name, type_) in zip(args, self.params):
            if type_ == "String":
                values.append(orjson.loads(arg) if len(arg) >= 2 and arg[0] == arg[-1] == '"' else arg)
                continue
            try:
                number = orjson.loads(arg)
            except orjson.JSONDecodeError:
                number = None
            limit = U8 if type_ == "u8" else U32
            if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= limit:
                raise ShimError(self._invalid(database, f"{name} must be a {type_} (0 to {limit}), not {arg!r}."))
            values.append(number)
        return values

    def _invalid(self, database: str, why: str) -> str:
        return (
            f"Invalid arguments provided for reducer `{self.name}` for database `{database}`.\n\n{why}\n\n"
            f"The reducer has the following signature:\n\t{self.signature}"
        )


def v4_priority(value: int) -> str:
    """v4's integer priority as Agora's (seed 000's map: 1 low … 4 urgent; another number is normal)."""
    try:
        return PriorityLevel(value).name
    except ValueError:
        return PriorityLevel.normal.name


def v4_object(text: str, what: str) -> dict[str, Any]:
    """A v4 String holding JSON: a JSON object is taken as it is; anything else is kept whole under ``v4_<what>``."""
    with contextlib.suppress(orjson.JSONDecodeError):
        value = orjson.loads(text)
        if isinstance(value, dict):
            return value
    return {f"v4_{what}": text}


def v4_list(text: str, name: str) -> list[Any]:
    try:
        value = orjson.loads(text) if text.strip() else []
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, list):
        raise ShimError(f"{name} must be a JSON array, not {text[:80]!r}")
    return value


def workflow_steps(steps: list[Any], assigned_agents: list[str]) -> list[dict[str, Any]]:
    """v4 workflow steps as Agora steps: a step's ``name`` (or ``step``), its ``agent`` (or ``agent_id``,
    ``assigned_agent``; else the assigned agents in turn), ``capabilities``, ``task_type``, ``input`` (or ``payload``)
    and ``depends_on``."""
    out = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise ShimError(f"steps[{i}] must be a JSON object")
        agora: dict[str, Any] = {"name": step.get("name") or step.get("step") or f"step_{i + 1}"}
        agent = step.get("agent") or step.get("agent_id") or step.get("assigned_agent")
        capabilities = step.get("required_capabilities") or step.get("capabilities")
        if agent:
            agora["agent"] = agent
        elif capabilities:
            agora["required_capabilities"] = capabilities
        elif assigned_agents:
            agora["agent"] = assigned_agents[i % len(assigned_agents)]
        for key, source in (("task_type", "task_type"), ("input", "input"), ("depends_on", "depends_on")):
            if source in step:
                agora[key] = step[source]
        if "input" not in agora and "payload" in step:
            agora["input"] = step["payload"]
        out.append(agora)
    return out


def _register_capability(shim: Shim, args: list[Any]) -> str:
    agent_id, capability_type, proficiency, max_tasks = args
    registration = shim.tenant.agents.register_capability(
        agent_id=agent_id, capability_type=capability_type, proficiency=proficiency, max_tasks=max_tasks
    )
    if registration.agent_token:
        shim.tokens.put(agent_id, registration.agent_token)
    return f"{registration.status} {agent_id} as {registration.agent_id}"


def _send_message(shim: Shim, args: list[Any]) -> str:
    from_agent, to_agent, message_type, content, priority = args
    receipt = shim.as_agent(
        from_agent, lambda c: c.messaging.send(to_agent, content, message_type=message_type, priority=v4_priority(priority))
    )
    return f"message {receipt.message_id} {receipt.status}"


def _assign_task(shim: Shim, args: list[Any]) -> str:
    assigned_agent, task_type, payload, priority = args
    task = shim.tenant.task.assign(task_type, v4_object(payload, "payload"), assignee=assigned_agent, priority=v4_priority(priority))
    warnings = f" ({'; '.join(task.warnings)})" if task.warnings else ""
    return f"task {task.task_id} {task.status}{warnings}"


def _start_workflow(shim: Shim, args: list[Any]) -> str:
    workflow_name, creator_agent, assigned_agents_text, steps_text = args
    assigned_agents = [str(a) for a in v4_list(assigned_agents_text, "assigned_agents")]
    steps = workflow_steps(v4_list(steps_text, "steps"), assigned_agents)
    created = shim.as_agent(
        creator_agent,
        lambda c: c.workflow.create(
            workflow_name, steps, assigned_agents=assigned_agents, metadata={"v4": {"creator_agent": creator_agent}}
        ),
    )
    return f"workflow {created.workflow_id} {created.status}"


REDUCERS = {
    r.name: r
    for r in (
        Reducer(
            "register_agent_capability",
            (("agent_id", "String"), ("capability_type", "String"), ("proficiency", "u8"), ("max_tasks", "u32")),
            _register_capability,
        ),
        Reducer(
            "send_agent_message",
            (("from_agent", "String"), ("to_agent", "String"), ("message_type", "String"), ("content", "String"), ("priority", "u8")),
            _send_message,
        ),
        Reducer(
            "assign_task",
            (("assigned_agent", "String"), ("task_type", "String"), ("payload", "String"), ("priority", "u8")),
            _assign_task,
        ),
        Reducer(
            "start_workflow_coordination",
            (("workflow_name", "String"), ("creator_agent", "String"), ("assigned_agents", "String"), ("steps", "String")),
            _start_workflow,
        ),
    )
}


# -- acting as agents -------------------------------------------------------------------------------------------------


class TokenCache:
    """Agent tokens per hub and key (mode 0600; written whole, under a lock, as several agents may call at once)."""

    def __init__(self, path: Path, url: str, api_key: str | None):
        self.path = path
        self.scope = f"{url} {hashlib.sha256((api_key or '').encode()).hexdigest()[:16]}"

    def get(self, agent: str) -> str | None:
        return self._read().get(self.scope, {}).get(agent)

    def put(self, agent: str, token: str) -> None:
        with self._locked():
            data = self._read()
            data.setdefault(self.scope, {})[agent] = token
            self._write(data)

    def drop(self, agent: str) -> None:
        with self._locked():
            data = self._read()
            data.get(self.scope, {}).pop(agent, None)
            self._write(data)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        partial = self.path.with_name(self.path.name + f".{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(data))
        os.replace(partial, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                import fcntl
            except ImportError:  # Windows: no advisory locks; concurrent writers may lose a token, which is re-minted
                yield
                return
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def default_tokens_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "agora" / "spacetime-tokens.json"


@dataclass
class Shim:
    """The hub, as the configured key and as any agent of its tenant."""

    url: str | None
    api_key: str | None
    tokens_path: Path
    _clients: list[AgoraClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tenant = self._client(self.api_key)
        self.tokens = TokenCache(self.tokens_path, self.tenant.config.url, self.tenant.api_key)

    def _client(self, key: str | None) -> AgoraClient:
        client = AgoraClient(self.url, key)
        self._clients.append(client)
        return client

    def as_agent(self, agent: str, call: Callable[[AgoraClient], Any]) -> Any:
        """``call`` with the agent's own token; a cached token the hub no longer takes is replaced once."""
        token = self.tokens.get(agent)
        if token is not None:
            try:
                return call(self._client(token))
            except Unauthenticated:
                self.tokens.drop(agent)
        return call(self._client(self._mint(agent)))

    def _mint(self, agent: str) -> str:
        try:
            token = self.tenant.admin.keys.create(kind="agent", agent=agent, name=f"spacetime shim: {agent}").key
        except NotFound:  # in v4 an agent existed by being named: register it
            registration = self.tenant.agents.register(agent, metadata={"migration_source": "v4", "v4_agent_id": agent})
            token = registration.agent_token
            if token is None:
                raise ShimError(f"AGORA_API_KEY is an agent's token: it cannot act as {agent!r}") from None
        except PermissionDenied:
            raise ShimError(
                f"cannot act as {agent!r}: AGORA_API_KEY may not mint agent tokens. Give the shim the admin key or a "
                f"tenant key with the admin scope, or have {agent!r} register through it (register_agent_capability)."
            ) from None
        self.tokens.put(agent, token)
        return token

    def close(self) -> None:
        for client in self._clients:
            client.close()


# -- the command ------------------------------------------------------------------------------------------------------

_GLOBAL_OPTIONS_WITH_VALUE = {"--root-dir", "--config-path"}
_CALL_OPTIONS_WITH_VALUE = {"-s", "--server"}
_CALL_FLAGS = {"--anonymous", "-y", "--yes"}


def subcommand(args: list[str]) -> int | None:
    """Where spacetime's subcommand is, past its global options."""
    i = 0
    while i < len(args):
        option = args[i].partition("=")
        if option[0] in _GLOBAL_OPTIONS_WITH_VALUE:
            i += 1 if option[1] else 2
        elif args[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def call_operands(args: list[str]) -> list[str]:
    """The operands of ``spacetime call`` (database, reducer, arguments), its own options left out: on Agora the
    hub is AGORA_URL and the caller its key, so --server, --anonymous and --yes have nothing to change."""
    operands, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return operands + args[i + 1 :]
        name, eq, _ = arg.partition("=")
        if name in _CALL_OPTIONS_WITH_VALUE:
            i += 1 if eq else 2
            continue
        if arg in _CALL_FLAGS:
            i += 1
            continue
        operands.append(arg)
        i += 1
    return operands


def is_shim(path: str) -> bool:
    """Whether an executable is this command (any installed copy of it): the real spacetime is a native binary."""
    try:
        if os.path.realpath(path) == os.path.realpath(sys.argv[0]):
            return True
        with open(path, "rb") as f:
            return SHIM_MARKER in f.read(4096)
    except OSError:
        return True  # unreadable: not a binary to run


def real_spacetime(configured: str | None) -> str | None:
    if configured:
        found = shutil.which(configured) or configured
        return None if is_shim(found) else found
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory or ".", NAME)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and not is_shim(candidate):
            return candidate
    return None


def help_text(settings: dict[str, str | None]) -> str:
    real = real_spacetime(settings["spacetime_bin"]) or "none found"
    lines = [
        "Agora's stand-in for the SpacetimeDB CLI, for v4 agents.",
        "",
        f"`spacetime call {V4_DATABASE} <reducer> <arguments…>` runs on an Agora hub (AGORA_URL) instead:",
        *(f"  {r.signature}" for r in REDUCERS.values()),
        "Priorities are v4's: 1 low, 2 normal, 3 high, 4 urgent (another number: normal).",
        f"Everything else goes to the real spacetime: {real}.",
        "",
        "Settings (flag anywhere on the command line, or environment variable):",
        *(f"  {s.flag} / {s.env}: {s.help}" for s in SETTINGS.values()),
        "",
        "Exit codes: 0 done; 1 the call failed (Error: … on stderr); 127 no real spacetime for a command Agora does not run.",
    ]
    return "\n".join(lines)


def pass_through(args: list[str], settings: dict[str, str | None]) -> int:
    real = real_spacetime(settings["spacetime_bin"])
    if real is None or os.environ.get(PASSED_THROUGH):
        what = " ".join(args[:3]) or "(no command)"
        print(
            f"Error: `spacetime {what}` is not one Agora runs, and there is no real spacetime to hand it to "
            f"(put it on PATH or set AGORA_SPACETIME_BIN). `spacetime agora` says what Agora runs.",
            file=sys.stderr,
        )
        return 127
    os.execve(real, [real, *args], {**os.environ, PASSED_THROUGH: "1"})
    return 0  # not reached: execve replaced this process


def run_reducer(reducer: Reducer, database: str, args: list[str], settings: dict[str, str | None]) -> int:
    values = reducer.parse(database, args)
    shim = Shim(settings["url"], settings["api_key"], Path(settings["tokens"] or default_tokens_path()))
    try:
        made = reducer.run(shim, values)
    finally:
        shim.close()
    print(f"agora: {reducer.name}: {made}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        settings, args = take_settings(sys.argv[1:] if argv is None else argv, dict(os.environ))
        at = subcommand(args)
        if at is not None and args[at] == "agora":
            print(help_text(settings))
            return 0
        if at is None or args[at] != "call":
            return pass_through(args, settings)
        operands = call_operands(args[at + 1 :])
        databases = {d.strip() for d in (settings["databases"] or V4_DATABASE).split(",") if d.strip()}
        if len(operands) < 2 or operands[0] not in databases or operands[1] not in REDUCERS:
            return pass_through(args, settings)
        return run_reducer(REDUCERS[operands[1]], operands[0], operands[2:], settings)
    except ShimError as exc:
        print(f"Error: {exc}", file=sys.stderr)
    except AgoraError as exc:
        print(f"Error: {exc.code}: {exc.message}", file=sys.stderr)
        if exc.details:
            print(orjson.dumps(exc.details).decode(), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
