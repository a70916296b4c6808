"""Scale EGP's completion API (the ``scale-egp`` SDK's wire format), an adapter over the
OpenAI-compatible API's service functions: the same chat models, versions and run records."""
