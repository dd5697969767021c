"""mwaa-iac: blue/green and in-place Apache Airflow upgrades for Amazon MWAA."""

__version__ = "0.1.0"
