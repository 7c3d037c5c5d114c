"""The one exception type for mistakes a user can make and fix."""


class UserError(ValueError):
    """Bad input from the user: a file, folder, option or weights file.

    The message is one line that names the argument or file, what was expected and what was
    found. The command-line interface prints it and exits with status 2, without a traceback.
    """
