"""The ceiling: a trivial FastAPI JSON POST endpoint with a pydantic body model.

Served exactly as ``agora serve`` serves the hub (agora/cli/serve.py): one uvicorn worker, uvloop,
httptools, access log and server header off, no log config. Whatever the hub does beyond this
(authentication, validation, the database, logging) is what the ratio to this ceiling measures.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

from agora.cli.serve import UVICORN_OPTIONS

PATH = "/echo"

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


class Echo(BaseModel):
    agent_name: str
    capabilities: list[str] = Field(default_factory=list)


class Echoed(BaseModel):
    ok: bool
    agent_name: str
    capabilities: int


@app.post(PATH)
async def echo(body: Echo) -> Echoed:
    return Echoed(ok=True, agent_name=body.agent_name, capabilities=len(body.capabilities))


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **UVICORN_OPTIONS)  # exactly as agora serve
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
