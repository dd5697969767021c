"""MWAA control-plane emulator (rest-json, validated against botocore's own service model).

Laid out like a moto backend:

- ``routes.py``: the operation table derived from botocore's ``mwaa`` model (method, URI, where
  each input member travels);
- ``validation.py``: generic validation of inputs against the model, AWS-shaped messages;
- ``responses.py``: request → backend call → response serialised per the output shape; plus the
  admin API (``/_emulator/health|environments|faults|sync``);
- ``models.py``: :class:`~.models.MwaaBackend`, the state (account → region → environment) and the
  declared status transitions; the work is delegated to a
  :class:`~mwaa_iac.local.runtime.base.Runtime`;
- ``exceptions.py``: one class per AWS error code; ``persistence.py``: JSON records;
  ``background.py``: SchedulerHeartbeat metrics and periodic DAG sync; ``server.py``: the app
  factory and a loopback HTTP server; ``client.py``: a Python client for the admin API.

Run it with ``python -m mwaa_iac.local.emulator --state-dir DIR [--port N] [--moto-endpoint URL]
[--runtime module:Class]``; the local stack (:mod:`mwaa_iac.local.stack`) does that for you.
In process::

    backend = MwaaBackend(runtime, store=EnvironmentStore(state_dir / "emulator"))
    server = serve(create_app(backend))  # http://127.0.0.1:<free port>
"""
