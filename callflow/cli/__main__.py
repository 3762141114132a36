"""``python -m callflow.cli``: the ``callflow`` command."""

from . import main

raise SystemExit(main())
