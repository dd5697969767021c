"""Typer command groups mounted by mwaa_iac.cli."""
