"""``agora workflows ls|show``: workflows from a terminal, the DAG drawn with each step's state."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.tree import Tree

from .connection import Hub, hub_command
from .output import table

app = typer.Typer(help="Multi-agent workflows: list them, and draw one with each step's state.", no_args_is_help=True)

STATE_MARKS = {
    "pending": "[dim]○ pending[/]", "running": "[blue]◐ running[/]", "waiting": "[yellow]⏸ waiting for a signal[/]",
    "completed": "[green]● completed[/]", "failed": "[red]✗ failed[/]", "skipped": "[dim]↷ skipped[/]",
    "cancelled": "[dim]⊘ cancelled[/]",
}  # fmt: skip


@hub_command(app, "ls")
def ls(
    hub: Hub,
    status: Annotated[str | None, typer.Option(help="running, completed, failed or cancelled.")] = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """List workflows, newest first."""
    result = hub.call("agora.workflow.list", status=status, limit=limit)
    rows = [[w["workflow_id"], w["workflow_name"], w["status"], f"{w['progress']:g}%", w["total_steps"], w["created_at"][:19]] for w in result["workflows"]]
    hub.show(result, lambda r: table(f"{r['count']} workflow(s)", ["workflow_id", "name", "status", "progress", "steps", "created"], rows))


@hub_command(app, "show")
def show(
    hub: Hub,
    workflow_id: Annotated[str, typer.Argument(help="The workflow id (wf_…).")],
    mermaid: Annotated[bool, typer.Option(help="Print the DAG as a Mermaid flowchart instead of drawing it.")] = False,
) -> None:
    """Draw a workflow's DAG: each step under the steps it depends on, with its state, agent and error."""
    status = hub.call("agora.workflow.status", workflow_id=workflow_id, mermaid=mermaid)
    if mermaid and not hub.json:
        typer.echo(status["mermaid"])
        return
    hub.show(status, lambda s: Console().print(dag(s)))


def dag(status: dict[str, Any]) -> Tree:
    """The steps as a tree from the roots down; a step with several dependencies (a join) is drawn under each, the
    first time in full and after that as a reference."""
    steps = {s["name"]: s for s in status["steps"]}
    children: dict[str, list[str]] = {name: [] for name in steps}
    for step in status["steps"]:
        for dep in step["depends_on"]:
            children[dep].append(step["name"])
    title = f"[bold]{status['workflow_name']}[/] {status['workflow_id']}  {status['status']}  {status['progress']:g}%"
    root = Tree(title)
    drawn: set[str] = set()

    def add(parent: Tree, name: str) -> None:
        step = steps[name]
        if name in drawn:
            parent.add(f"[dim]→ {name} (above)[/]")
            return
        drawn.add(name)
        who = f"  [dim]{step['agent']}[/]" if step.get("agent") else ""
        why = f"  [dim]{step['error']}[/]" if step.get("error") else ""
        kind = "" if step["kind"] == "task" else f" [italic]({step['kind']})[/]"
        node = parent.add(f"{name}{kind}  {STATE_MARKS.get(step['state'], step['state'])}{who}{why}")
        for child in children[name]:
            add(node, child)

    for step in status["steps"]:
        if not step["depends_on"]:
            add(root, step["name"])
    return root
