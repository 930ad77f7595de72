"""The public HTTP edge: REST API, webhook ingest, OpenAPI document."""
