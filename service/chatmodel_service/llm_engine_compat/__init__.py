"""Scale LLM Engine's completion API (the ``llmengine`` SDK's ``Completion.create`` and
``acreate``): ``POST /v1/llm/completions-sync`` and ``/v1/llm/completions-stream``.

An adapter over the OpenAI-compatible API's service functions, so a call is what
``POST /v1/completions`` makes of it: ``model_endpoint_name`` names a chat model, whose
published version answers the prompt as one user message, recorded as a run without a
session. Errors keep the service's own body, whose ``detail`` is what the SDK reads,
with the statuses the SDK maps to its exceptions.
"""
