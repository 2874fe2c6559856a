"""The docs site (issue 62): its generated reference is current and covers every catalog tool (and its REST path) and
every setting, every page of it is in the site's navigation, and ``mkdocs build --strict`` passes (no broken link,
anchor or page)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
import yaml

from agora.catalog import docgen
from agora.catalog.registry import build_catalog
from agora.cli.main import app

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
