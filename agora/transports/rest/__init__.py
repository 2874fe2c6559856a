"""The REST door: every tool at ``/agora/{category}/{action}``, plus resource-style aliases."""

from .routes import mount

__all__ = ["mount"]
