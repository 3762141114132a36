"""``python -m callflow.cli``: the ``callflow`` command."""

from .main import main

raise SystemExit(main())
