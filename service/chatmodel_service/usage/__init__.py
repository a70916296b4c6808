"""Usage per project: runs, errors, tokens and cost over a time window, grouped by
version, day or API key (``GET /v1/usage``)."""
