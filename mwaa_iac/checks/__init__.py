"""Compatibility checks for an upgrade, runnable offline: DAG code against the target Airflow
(:mod:`mwaa_iac.checks.dags`) and the environment's requirements against the target's constraints
(:mod:`mwaa_iac.checks.requirements`). They return results; they print nothing."""
