"""The artifact store (filesystem by default) and safe, deterministic zip handling."""
