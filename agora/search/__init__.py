"""Search over agents, marketplace listings and catalog tools: full text from the database's own engine, vectors from
a pluggable embedder, fused and re-ranked (``agora.marketplace.search`` and the ``q`` of the discovery tools)."""
