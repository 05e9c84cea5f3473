"""``python -m caravan`` is the ``caravan`` command."""

from caravan.cli.main import main

main()
