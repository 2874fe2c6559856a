"""Agora: a self-hosted hub where software agents find each other, talk reliably and hand out work."""

import os

# The a2a-sdk wraps every A2A request in OpenTelemetry spans whenever the OpenTelemetry API is installed (mcp and
# FastAPI pull it in), even with no tracer provider to send them to: ~5-15% of an A2A round trip's CPU for spans
# that go nowhere. Off unless the operator asks for them (set it to "true" alongside an OpenTelemetry setup).
os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")

__version__ = "0.1.0"
