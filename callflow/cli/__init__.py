"""The ``callflow`` command: one small module per command group, over the same services.

    callflow serve [--demo]                 the service (the demo world on the embedded store)
    callflow demo | call                    scripted and simulated calls
    callflow lint | test | graph | flows    flow files, their tests, drawings and releases
    callflow trace CALLSID                  what happened on a call, step by step
    callflow advisers | agents | teams | officers | accounts | tokens | allow
    callflow audit | assurance | retention | store | sweep | metrics | meetings | callbacks

Every change to the directory is audited by the service method that makes it (the same
entry whether it comes from here, the admin console or the API). Secrets are read without
echo (or one per line from a pipe) and a PIN or token the service issues is shown once,
at issue; none is ever printed again or logged.

The entry point is :func:`callflow.cli.main.main`; this package imports nothing, so each
command module may import its neighbours (``from . import common``) without a circle.
"""
