"""The HTTP API: Starlette app, endpoint table, request/response models, guards, NDJSON streaming."""
