"""Agora benchmarks: ``python -m benchmarks [SCENARIO ...] [--store sqlite|postgres|both] [--quick]``.

Every figure is measured against a ceiling taken in the same run (a trivial FastAPI endpoint served by
uvicorn with the settings ``agora serve`` uses, driven by the same load generator), so that the ratios
stay meaningful on a noisy shared machine. See benchmarks/README.md.
"""
