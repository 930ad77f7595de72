"""HTTP handlers of the ``/api/*`` routes, one module per resource."""
