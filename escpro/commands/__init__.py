"""One module per CLI command (loaded lazily by escpro.cli)."""
