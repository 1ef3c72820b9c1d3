"""Errors a user can fix: the command line prints their message (no traceback) and exits 2."""


class UserError(RuntimeError):
    """Something in the input or configuration that the user must change; the message says how."""


class PretrainedWeightsUnavailable(UserError):
    """The requested pretrained weights cannot be loaded (offline, wrong file, ...)."""


class DataError(UserError, ValueError):
    """The data given (or asked for) cannot be used as it is."""


class DataNotFound(UserError, FileNotFoundError):
    """The data given does not exist where it was said to be."""
