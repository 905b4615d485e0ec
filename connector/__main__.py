"""``python -m connector`` is ``bpc``."""

from connector.cli import main

main()
