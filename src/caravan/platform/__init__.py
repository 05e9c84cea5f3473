"""The local serverless platform, usable without the engine: functions with versions and
aliases, the API front with stages, static sites, releases."""
