"""HTTP API tests: every endpoint, error code, stream, guard and metric against a real velo-server."""
