"""``ipaas``: the command-line client of the public HTTP API (``ipaas --help``)."""
