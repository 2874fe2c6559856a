"""The edge: what stands between the network and the doors (HTTP limits and timeouts, the body limit, anonymous rate
limits, security headers, CORS, the request log)."""

from .middleware import EdgeMiddleware, security_headers
from .protocol import EdgeLimits, protocol_class
from .server import edge_options

__all__ = ["EdgeLimits", "EdgeMiddleware", "edge_options", "protocol_class", "security_headers"]
