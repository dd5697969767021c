"""MWAA control-plane emulator (rest-json, validated against botocore's own service model)."""
