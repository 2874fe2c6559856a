"""The doors: thin adapters from a protocol onto the catalog."""
