"""The two kinds of failure the entrypoint reports, and their exit statuses.

A ConfigError is the user's to fix (bad environment, bad argument, bad file): one line naming the
problem, exit status 2, raised before anything on disk changes. A RuntimeFailure is something that
went wrong while doing the work (a server that would not start, a primary that never answered):
one line, exit status 1. Anything else is a bug and gets a traceback with status 70.
"""

EXIT_CONFIG = 2
EXIT_RUNTIME = 1
EXIT_INTERNAL = 70


class AzaError(Exception):
    exit_code = EXIT_RUNTIME


class ConfigError(AzaError):
    """Bad user input. The message names the variable or argument and what is allowed."""

    exit_code = EXIT_CONFIG


class RuntimeFailure(AzaError):
    """The work itself failed (a process, the network, the disk)."""

    exit_code = EXIT_RUNTIME
