"""Run one measurement in this fresh interpreter and print its result as JSON.

    python bench/probe.py NAME '{"path": "...", ...}'
    python bench/probe.py sandbox LATENCY_MS

Nothing is imported at module level on purpose: bulkimport starts its worker
processes with ``spawn``, which imports the main module again in every
worker, and a worker should cost what it costs under the real CLI.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import json
    import logging
    from pathlib import Path

    import probes

    logging.basicConfig(level=logging.ERROR)
    name, argument = argv
    if name == "sandbox":
        probes.serve_sandbox(float(argument))
        return 0
    arguments = json.loads(argument)
    for key, value in arguments.items():
        if key.endswith("path"):
            arguments[key] = Path(value)
    print(json.dumps(getattr(probes, name)(**arguments)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
