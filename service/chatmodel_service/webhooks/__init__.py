"""Webhooks: a project's admins register endpoints and are told when its runs finish.

* ``router`` / ``service`` / ``schemas``: endpoints (made, listed, deleted; the signing
  secret shown once), their delivery log and redelivery;
* ``outbox``: ``queue_run_webhooks``, called by the run engine in the transaction that
  finishes a run, writes one delivery per endpoint that wants the run's event (the
  durable outbox: no event is lost with the server, none is told of a run never stored);
* ``delivery``: a worker per server process that claims due deliveries, signs and sends
  them (``signing``: Standard Webhooks), and retries on the settings' schedule;
* ``addresses``: which URLs may be called (no loopback, private or link-local address
  unless the settings allow the host).

Nothing here imports the run engine (which imports ``outbox``): runs are read from their
tables in ``repository``.
"""
