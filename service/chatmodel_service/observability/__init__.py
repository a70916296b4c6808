"""What operators watch: Prometheus metrics, one JSON log line per request with its
request id, and the health endpoints (``/healthz``, ``/readyz``, ``/metrics``)."""
