"""How long the webhook path waits for JetStream: a histogram of the publish (request to PubAck).

Ingest counts and latency by status are the HTTP metrics of the ``/hooks/{workflow_id}`` route
(``ipaas_http_requests_total``, ``ipaas_http_request_duration_seconds``); this one isolates the
bus's share.  Observations carry the event's trace id as an exemplar (from the ``traceparent``
the publish sent; the current span's when the publish failed), at most one per bucket every
``EXEMPLAR_EVERY_SECONDS``: a bucket keeps only its latest exemplar and scrapes are seconds
apart, so the others would be overwritten unseen, and each one costs more than the observation.
"""

from __future__ import annotations

import time
from bisect import bisect_left

from prometheus_client import CollectorRegistry, Histogram

from libs.common.http.exemplars import trace_exemplar

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
EXEMPLAR_EVERY_SECONDS = 1.0


class PublishLatency:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._histogram = Histogram(
            "ipaas_gateway_publish_duration_seconds",
            "Time from a webhook's publish to JetStream's acknowledgement (or failure)",
            buckets=BUCKETS,
            registry=registry,
        )
        # When each bucket (the last one is +Inf) last took an exemplar.
        self._exemplar_at = [float("-inf")] * (len(BUCKETS) + 1)

    def observe(self, seconds: float, traceparent: str | None = None) -> None:
        bucket = bisect_left(BUCKETS, seconds)  # the bucket the histogram counts it in (le: bound >= seconds)
        now = time.monotonic()
        if now - self._exemplar_at[bucket] < EXEMPLAR_EVERY_SECONDS:
            self._histogram.observe(seconds)
            return
        self._exemplar_at[bucket] = now
        self._histogram.observe(seconds, {"trace_id": traceparent[3:35]} if traceparent else trace_exemplar())
