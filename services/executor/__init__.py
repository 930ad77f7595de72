"""The executor: runs each triggered event's action once in effect, and logs it."""
