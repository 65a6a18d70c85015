"""The DuckDB file that holds every tree node and role call: escpro's public SQL interface."""
