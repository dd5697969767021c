"""The functional core: pure decisions, no I/O (no boto3, subprocess, Typer or network)."""
