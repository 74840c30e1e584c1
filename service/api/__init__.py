"""The HTTP API (FastAPI): dashboard and homeowner endpoints, pages, auth and SSE."""
