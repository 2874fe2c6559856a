"""Wire models: the inputs and outputs of every catalog tool, defined once for the hub and its clients."""
