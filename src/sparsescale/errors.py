"""The one exception type for mistakes a user can make.

The CLI turns it into a single line on stderr and exit status 2. Everything
else that escapes is a bug in sparsescale.
"""

from __future__ import annotations


class SparsescaleError(Exception):
    """Bad input, bad configuration or an impossible request, with a message
    that names the file, row, column or flag at fault.

    `param`: the library argument at fault, when one is. The message then
    reads "param: detail" for a library caller, and the CLI, which knows
    which flag sets that argument (cli/flags.py), says "--flag: detail"
    instead, without parsing the message.
    """

    def __init__(self, message: str = "", *, param: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param
        self.detail = message

    def __reduce__(self):
        # Errors cross process boundaries (sweep workers, Ray): rebuild from the
        # full message and keep `param` and `detail` as attributes.
        return (type(self), (str(self),), {"param": self.param, "detail": self.detail})
