"""The ``caravan`` command line: a thin client of the server's API, plus in-process runs."""
