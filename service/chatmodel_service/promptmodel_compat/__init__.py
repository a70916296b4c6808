"""promptmodel's backend API (``/api/cli/...``), so its published SDK (0.2.1) runs against
this server: an adapter over sessions, versions, releases and runs, never a second store."""
