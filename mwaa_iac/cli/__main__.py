"""`python -m mwaa_iac.cli ...`: the same as the `mwaa-iac` console script."""

from mwaa_iac.cli.root import run

if __name__ == "__main__":  # pragma: no cover
    run()
