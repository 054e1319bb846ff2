"""The process's open-file limit: every connection is a file, so it bounds how many streams one process holds."""

from __future__ import annotations

import contextlib


def raise_open_files() -> int | None:
    """Take the hard limit as the soft one where the system allows; returns the limit now in force (None where the
    platform has none to read, as on Windows, or it is unlimited)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft
