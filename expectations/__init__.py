"""Great Expectations quality gate: suites as code and the gate that blocks publication.

Importing this package is cheap: Great Expectations, pandas and duckdb are imported on use.
"""

from expectations.gate import QualityGateError, run_checkpoint, validate_warehouse

__all__ = ["QualityGateError", "run_checkpoint", "validate_warehouse"]
