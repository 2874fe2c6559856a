"""The one TLS context every HTTP client of a process verifies servers with.

httpx makes a new context for each client it builds, loading the whole CA bundle (~45 ms of CPU here): a hub that
made a client for a push round, a bridged agent or its hosting node stalled its event loop that long each time.
The context is made once and shared (an ``ssl.SSLContext`` is safe to share between clients and threads); it
honours ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` as httpx does, as they are when it is first made.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
