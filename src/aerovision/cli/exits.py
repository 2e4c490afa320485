"""The exit codes of the commands that talk to a server, and which client error gives which."""

from __future__ import annotations

from aerovision import client as avc

EXIT_OK = 0
"""Everything asked for was done."""
EXIT_FAILED = 1
"""A task ended in ``error``; in a batch, at least one input failed (partial failure)."""
EXIT_USAGE = 2
"""Bad command line (click's own code): unknown option, missing file, malformed KEY=VALUE."""
EXIT_REFUSED = 3
"""The server refused the request: 422 (invalid parameter or file), 413 (too large), other 4xx."""
EXIT_NOT_FOUND = 4
"""404: unknown task, webhook or file, or a tool this server does not offer."""
EXIT_UNREACHABLE = 5
"""No answer from the server (connection refused, network timeout), or a 5xx."""
EXIT_TIMEOUT = 6
"""The task did not end within --timeout (it keeps running on the server)."""

EXIT_INTERRUPTED = 130
"""Ctrl-C (submitted tasks keep running on the server)."""

EXIT_CODES_HELP = """\b
Exit codes of match, tasks, settings and webhooks:
  0  done
  1  a task ended in error; in a batch, at least one input failed
  2  bad command line
  3  the server refused the request (422 invalid parameter or file, 413 too large)
  4  not found (404: unknown task or webhook, tool not offered by the server)
  5  cannot reach the server, or it failed (5xx)
  6  --timeout passed before the task ended (it keeps running)
  130  interrupted by Ctrl-C (submitted tasks keep running)"""


def exit_code(exc: avc.AeroVisionError) -> int:
    """The documented exit code for a client error."""
    if isinstance(exc, avc.TaskFailed):
        return EXIT_FAILED
    if isinstance(exc, avc.WaitTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, (avc.NotFound, avc.UnknownTool)):
        return EXIT_NOT_FOUND
    if isinstance(exc, (avc.TransportError, avc.ServerError)):
        return EXIT_UNREACHABLE
    if isinstance(exc, avc.APIError):
        return EXIT_REFUSED
    return EXIT_UNREACHABLE  # an answer the client could not read
