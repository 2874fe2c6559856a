"""Defaults of the store commands, in a module of their own so that ``agora --help`` reads them without importing
the rest of the package."""

DEFAULT_BATCH = 5_000  # rows read and written at a time: one COPY or executemany each
DEFAULT_PAGES_PER_STEP = 1024  # SQLite pages (4 KiB) a backup copies between two progress updates
