"""The one exception type for bad input.

The native module (``seedcore._native``) raises this very class, so callers catch a
single type whether the Python or the C++ reader found the problem.
"""


class SeedError(ValueError):
    """Bad input: a malformed or corrupt ``.seed`` file, an unsupported tensor, a
    non-finite weight.  The message names the file (or tensor), the part of it and
    what is wrong."""
