"""Message and API schemas shared between services."""
