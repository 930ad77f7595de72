"""aiohttp building blocks: envelope, errors, middleware, health and metrics."""
