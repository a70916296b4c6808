"""OpenAI's Responses and Conversations APIs, as an adapter over the native sessions, runs
and versions: a conversation is a session, its items the session's messages, a response a
run. Nothing is stored twice: whatever is made here is seen by the native API, the client
and the admin page, and the other way round. Routes: ``responses_api.router``."""
