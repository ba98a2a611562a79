"""The one error type for problems a user can fix (bad path, bad file, bad option), and
what counts as a full disk, which the user fixes by freeing space."""

import errno

# A full disk or an exhausted quota: the same command, run again once there is space,
# continues or redoes the work.
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def is_full_disk(error: BaseException) -> bool:
    """Whether `error` is the OS saying the disk (or the user's quota) is full."""
    return isinstance(error, OSError) and error.errno in FULL_DISK


class UserError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with status 2."""
