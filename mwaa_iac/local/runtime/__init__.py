"""What backs an emulated MWAA environment: a real Airflow of its version (see ``airflow.py``)."""
