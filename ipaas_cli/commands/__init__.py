"""One module per command group of ``ipaas``."""
