"""`make docs`: build the dbt docs site (models, columns, tests, lineage) and serve it locally."""

from __future__ import annotations

import sys

from journeys.settings import get_settings
from journeys.transform import invoke


def main(port: int = 8080) -> None:
    settings = get_settings()
    if not settings.warehouse.exists():
        sys.exit(f"No warehouse at {settings.warehouse}: run `make run` first.")
    invoke(settings, ["docs", "generate"])
    print(f"dbt docs: http://127.0.0.1:{port}  (Ctrl-C to stop)")
    invoke(settings, ["docs", "serve", "--port", str(port), "--host", "127.0.0.1", "--no-browser"])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8080)
