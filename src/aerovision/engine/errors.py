"""Errors raised by the engine.

The engine raises exactly one kind of error on purpose:

    InputError(ValueError)   the input cannot be processed as given (bad file,
                             impossible sizes, out-of-range parameter); the
                             message says what was wrong and is shown to the user.

Anything else escaping an engine function is a bug.
"""


class InputError(ValueError):
    """The input is unusable; ``str(exc)`` is a message a user can act on."""
