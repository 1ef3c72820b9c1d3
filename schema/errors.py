"""Errors a user can fix: every command line prints their message (no traceback) and exits 2."""
import logging
import sys
from typing import Callable, Optional

USER_ERROR_EXIT = 2


class UserError(RuntimeError):
    """Something in the input or configuration that the user must change; the message says how."""


class PretrainedWeightsUnavailable(UserError):
    """The requested pretrained weights cannot be loaded (offline, wrong file, ...)."""


class DataError(UserError, ValueError):
    """The data given (or asked for) cannot be used as it is."""


class DataNotFound(UserError, FileNotFoundError):
    """The data given does not exist where it was said to be."""


class ServingError(UserError):
    """A serving call that cannot be answered.

    The dev server sends it back as the call's status; the clients raise it for what came back. `code` is the status
    code's name (INVALID_ARGUMENT, NOT_FOUND, ...) when known.
    """

    def __init__(self, message: str, code: Optional[str] = None):
        super().__init__(message)
        self.code = code


class ConfigError(UserError, ValueError):
    """A configuration value or key that cannot be used; the message is one line and says why."""


def user_errors_to_exit(main: Callable[[], int]) -> int:
    """The one user-error path of the command lines.

    Run `main`; a UserError becomes its message on one line of stderr and exit code 2 (the traceback only at debug
    level).
    """
    try:
        return main()
    except UserError as err:
        logging.getLogger(__name__).debug("user error", exc_info=True)
        print(f"error: {err}", file=sys.stderr)
        return USER_ERROR_EXIT
