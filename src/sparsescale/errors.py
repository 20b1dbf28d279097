"""The one exception type for mistakes a user can make.

The CLI turns it into a single line on stderr and exit status 2. Everything
else that escapes is a bug in sparsescale.
"""


class SparsescaleError(Exception):
    """Bad input, bad configuration or an impossible request, with a message
    that names the file, row, column or flag at fault."""
