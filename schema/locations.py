"""Where a path lives: this machine's file system, or a store named by a URL scheme (gs://, s3://)."""


def is_local(location: str) -> bool:
    """Whether `location` is on this machine's file system (no URL scheme such as gs://)."""
    return "://" not in location
