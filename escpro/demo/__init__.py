"""`escpro demo`: the whole pipeline on bundled seeds with an embedded model (or the simulator)."""
