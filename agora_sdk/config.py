"""Where the hub is and which key to use: arguments, else AGORA_URL / AGORA_API_KEY, else the local hub's key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    api_key: str | None
    key_source: str


def resolve(url: str | None = None, api_key: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> ClientConfig:
    url = (url or os.environ.get("AGORA_URL") or DEFAULT_URL).rstrip("/")
    if api_key:
        return ClientConfig(url, api_key, "argument")
    if os.environ.get("AGORA_API_KEY"):
        return ClientConfig(url, os.environ["AGORA_API_KEY"], "AGORA_API_KEY")
    key_file = Path(data_dir or os.environ.get("AGORA_DATA_DIR") or ".agora") / "admin.key"
    try:
        return ClientConfig(url, key_file.read_text().strip(), str(key_file))
    except OSError:
        return ClientConfig(url, None, "none")
