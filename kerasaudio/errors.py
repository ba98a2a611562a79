"""The one error type for problems a user can fix (bad path, bad file, bad option)."""


class UserError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with status 2."""
