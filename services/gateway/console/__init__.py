"""The web console at ``/console``: server-rendered pages that call the public ``/api``."""
