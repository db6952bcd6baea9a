"""HTTP transport: the ASGI application and its wiring."""
