"""DAG files mwaa-iac delivers to an environment's DAG folder (under ``mwaa_iac_dr/``), as real
Python: ``core.dr`` fills in each file's constants block (between the BEGIN and END lines) and
changes nothing else. They run inside Airflow and import nothing of mwaa-iac."""
