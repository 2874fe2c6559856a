"""The docs site (issue 62): its generated reference is current and covers every catalog tool (and its REST path) and
every setting, each tool's example is input the tool accepts and the same call in every door, every page of it is in
the site's navigation, and ``mkdocs build --strict`` passes (no broken link, anchor or page)."""

from __future__ import annotations

import ast
import inspect
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
import yaml

from agora.catalog import docgen, examples
from agora.catalog.registry import build_catalog
from agora.cli.main import app
from agora.cli.tools import parse_arguments
from agora_sdk import AgoraClient

from .docs_blocks import blocks

ROOT = Path(__file__).resolve().parents[1]


def test_the_generated_reference_is_current() -> None:
    for path, text in docgen.pages().items():
        page = docgen.TARGET / path
        assert page.exists() and page.read_text() == text, f"docs/reference/{path} is stale: run python -m agora.catalog.docgen"
    generated = {docgen.TARGET / p for p in docgen.pages()}
    assert {p for p in (docgen.TARGET / "tools").glob("*.md")} <= generated, "a page of a category that is gone: run the generator"


def test_the_reference_covers_every_tool_and_every_setting() -> None:
    pages = docgen.pages()
    for tool in build_catalog():
        assert f"\n## {tool.name}\n" in pages[f"tools/{tool.name.split('.')[1]}.md"], tool.name
        assert f"| `POST` | `{tool.http_path}` |" in pages["rest.md"], tool.name
    serve = typer.main.get_command(app).commands["serve"]  # type: ignore[attr-defined]
    for param in serve.params:
        if param.name != "help" and not getattr(param, "hidden", False):
            assert f"`{param.opts[0]}`" in pages["settings.md"] and f"`{param.envvar}`" in pages["settings.md"], param.name


def test_each_tool_s_example_is_valid_input_and_the_same_call_in_every_door() -> None:
    """The reference shows one call per tool in curl, Python, TypeScript, the CLI and MCP: each must carry the same
    arguments (the SDKs' positional fields in their places), and the tool's model must accept them."""
    client = AgoraClient(url="http://127.0.0.1:9", api_key="unused")
    shown = 0
    for page in sorted((docgen.TARGET / "tools").glob("*.md")):
        page_blocks = [b for b in blocks(page) if b.tab is not None]
        for at in range(0, len(page_blocks), 5):
            curl, python, typescript, cli, mcp = (b.code for b in page_blocks[at : at + 5])
            call = json.loads(mcp)["params"]
            tool = next(t for t in build_catalog() if t.name == call["name"])
            args = call["arguments"]
            assert args == examples.arguments(tool), tool.name
            tool.input_model.model_validate(args)
            assert json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0]) == args, f"{tool.name}: curl"
            assert _python_arguments(client, python) == args, f"{tool.name}: Python"
            rest = any(n not in tool.input_model.positional_args for n in args)
            assert _typescript_arguments(tool.input_model.positional_args, typescript, rest) == args, f"{tool.name}: TypeScript"
            assert parse_arguments(shlex.split(cli)[3:], None) == args, f"{tool.name}: CLI"
            shown += 1
    assert shown == len(build_catalog())


def _python_arguments(client: AgoraClient, code: str) -> dict[str, Any]:
    """The arguments a ``client.group.method(…)`` line passes, bound to the SDK method's own parameters."""
    call = ast.parse(code).body[-1].value  # type: ignore[attr-defined]
    target, path = client, []
    node = call.func
    while isinstance(node, ast.Attribute):
        path.insert(0, node.attr)
        node = node.value
    for name in path:
        target = getattr(target, name)
    positional = [ast.literal_eval(a) for a in call.args]
    keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    return dict(inspect.signature(target).bind(*positional, **keywords).arguments)


def _typescript_arguments(positional: tuple[str, ...], code: str, rest: bool) -> dict[str, Any]:
    """The same for ``client.group.method(…)`` in TypeScript: its positional fields in order (``undefined`` for one
    left out), then, when ``rest``, one object with the other fields."""
    inside = code.rsplit("(", 1)[1].rsplit(");", 1)[0]
    values = json.loads(f"[{inside.replace('undefined', 'null')}]")
    options = values.pop() if rest else {}
    assert len(values) <= len(positional), code
    return {**{name: v for name, v in zip(positional, values) if v is not None}, **options}


def test_every_page_is_in_the_navigation() -> None:
    def listed(nav: object) -> set[str]:
        if isinstance(nav, str):
            return {nav}
        if isinstance(nav, dict):
            return set().union(*(listed(v) for v in nav.values()))
        if isinstance(nav, list):
            return set().union(*(listed(v) for v in nav))
        return set()

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages - listed(config["nav"]) == set(), "add these pages to mkdocs.yml's nav"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "tools" / "conversations" / "index.html").exists()
