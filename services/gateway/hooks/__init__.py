"""Webhook ingest: the hot path from ``POST /hooks/{id}`` to a JetStream PubAck."""
