"""velo-server: compiles Velo SQL into streaming jobs over Kafka and serves them over HTTP."""

__version__ = "0.1.0"
