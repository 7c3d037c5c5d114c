"""The one exception type for mistakes a user can make and fix."""


def os_error_line(error: OSError) -> str:
    """A file system's refusal (a full disk, a read-only folder, a path under a file) as one line
    naming the path."""
    where = error.filename if error.filename is not None else "a file"
    return f"{where}: could not read or write it ({error.strerror or error})"


class UserError(ValueError):
    """Bad input from the user: a file, folder, option or weights file.

    The message is one line that names the argument or file, what was expected and what was
    found. The command-line interface prints it and exits with status 2, without a traceback.
    """
