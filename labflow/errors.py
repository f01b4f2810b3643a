class Conflict(Exception):
    """A state change that the object's current state does not allow (HTTP 409)."""
