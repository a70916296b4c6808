"""The OpenAI-compatible API: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``.

``model`` names a chat model; its published version's system prompt, model and parameters
apply. With ``X-Session-Id`` a chat completion continues (or starts) a stored session;
without one the call is stateless but still recorded as a run of the version. Errors on
these routes use OpenAI's ``{"error": {message, type, param, code}}`` body.
"""
