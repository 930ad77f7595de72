"""The bus's error hierarchy: one base, one class per condition a caller handles."""


class BusError(Exception):
    """Base class for bus failures."""


class BusUnavailable(BusError):
    """NATS or JetStream did not answer in time; the caller should retry later."""
