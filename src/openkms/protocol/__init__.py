"""The wire protocol: JSON 1.1 requests in, typed calls to the service, JSON responses out."""
