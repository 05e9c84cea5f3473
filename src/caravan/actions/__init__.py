"""Action providers, one small module each, found through a registry keyed by actionTypeId."""
