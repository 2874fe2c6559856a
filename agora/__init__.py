"""Agora: a self-hosted hub where software agents find each other, talk reliably and hand out work."""

__version__ = "0.1.0"
