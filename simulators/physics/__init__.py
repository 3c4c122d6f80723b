"""Physics of plant equipment: one model per kind of unit, all vectorized over time chunks."""
