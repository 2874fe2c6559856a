"""Hosting nodes: build marketplace agents and run their instances as supervised processes."""
