"""One module per command group; ``caravan.cli.main`` imports a module only when its command
runs."""
