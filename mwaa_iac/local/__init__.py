"""The local stack: moto's server for S3/SSM/Route 53/CloudWatch/IAM plus an MWAA emulator whose
environments are real Apache Airflow installations. Used by tests, the demo and benchmarks."""
