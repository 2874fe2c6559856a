"""``agora import v4``: seed 000's v4 marketplace export into a store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import orjson
import typer

from .output import console, emit_json, table
from .serve import DatabaseUrl, DataDir
from .store import JsonOutput, store_errors

app = typer.Typer(help="Bring data made elsewhere into a store.", no_args_is_help=True)


@app.command("v4")
def v4(
    export: Annotated[Path, typer.Argument(help="The v4 export: spacetime export agora-marketplace --format json > v4_export.json")],
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    tenant: Annotated[
        str, typer.Option(envvar="AGORA_IMPORT_TENANT", help="The tenant (id or name) the v4 agents join; a new name makes the tenant.")
    ] = "default",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the export and show what the import would do; write nothing.")] = False,
    mapping: Annotated[
        Path | None, typer.Option(envvar="AGORA_IMPORT_MAPPING", help="Also write the whole v4 → Agora id mapping to this JSON file.")
    ] = None,
    json: JsonOutput = False,
) -> None:
    """Import v4 agents (agent_capability) and messages (agent_message) with new ids: every row is checked first and
    all of it goes in one transaction, and importing the same export again creates nothing twice. Safe while a hub
    runs on the store (its agents see the messages at their next read)."""
    from agora.maintenance.endpoints import StoreLocation
    from agora.maintenance.v4_import import import_v4

    location = StoreLocation.of(database_url, data_dir)
    with store_errors():
        report = asyncio.run(import_v4(export, location, tenant=tenant, dry_run=dry_run))
        if mapping is not None and not dry_run:
            mapping.write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
    if json:
        emit_json(report.to_json())
        return
    new = "(new)" if dry_run else None  # a dry run's ids are not kept: none is shown as if it were
    rows = [[a.v4_agent_id, new if new and a.status == "created" else a.agent_id, a.status, ", ".join(a.capabilities)] for a in report.agents]
    table(f"v4 agents → tenant {report.tenant_id}{' (new)' if report.tenant_created else ''}", ["v4 agent_id", "Agora agent_id", "", "capabilities"], rows)
    verb = "would create" if dry_run else "created"
    console.print(
        f"messages: {verb} {report.created_messages:,}, already imported {report.existing_messages:,}; "
        f"{report.acked:,} that v4 had delivered are acknowledged; {report.default_priority:,} had a priority outside 1-4 (now normal)",
        highlight=False,
    )
    if report.ignored_tables:
        console.print("not imported: " + ", ".join(f"{name} ({n:,} rows)" for name, n in report.ignored_tables.items()), highlight=False)
    if dry_run:
        console.print("dry run: nothing was written", highlight=False)
    elif mapping is not None:
        console.print(f"the id of every agent and message: {mapping}", highlight=False)
