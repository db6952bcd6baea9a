"""The web console at ``/console/``: server-rendered pages that act through the API as the
signed-in principal (docs/console.md)."""
