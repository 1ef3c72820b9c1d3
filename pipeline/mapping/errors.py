"""The error of land-use maps: a scene, model or option that cannot be mapped (a user error, exit 2)."""
from __future__ import annotations

from schema.errors import UserError


class MapError(UserError, ValueError):
    """A scene, model or option that cannot be mapped; the message names it and the fix."""
