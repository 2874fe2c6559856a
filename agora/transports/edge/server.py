"""How ``agora serve`` configures uvicorn for the edge: the guarded protocol, timeouts, frame size, trusted proxies."""

from __future__ import annotations

import contextlib
import resource
from typing import Any

from agora.config import Settings

from .protocol import EdgeLimits, protocol_class

# File descriptors kept for what is not a client connection (database, Redis, log files, instance pipes).
_SPARE_FDS = 1024


def edge_options(settings: Settings) -> dict[str, Any]:
    """uvicorn ``Config`` options enforcing the settings' edge limits (and room for that many open connections)."""
    _allow_open_files(settings.max_connections + _SPARE_FDS)
    limits = EdgeLimits(
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
    return {
        "http": protocol_class(limits),
        "timeout_keep_alive": settings.keepalive_timeout,
        "ws_max_size": settings.ws_max_frame_bytes,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.trusted_proxies,
    }


def _allow_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files toward ``wanted`` (never past the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
