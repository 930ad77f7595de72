"""SQL of the gateway, one module per table family; every query is tenant-scoped."""
