"""``python -m novacron.cli``: the same as the ``novacron`` command."""

from novacron.cli import main

main()
