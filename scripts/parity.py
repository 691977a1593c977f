"""Check the lfcs learner against episodes recorded from the authors' code: python scripts/parity.py FILE...

Run with a Python that lacks lfcs's dependencies (torch), it re-runs itself with the project's own virtual
environment (.venv beside this script's folder) when there is one, so the check works from any shell of the repo.
"""

import importlib.util
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    venv_python = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    if importlib.util.find_spec("torch") is None and venv_python.exists() and Path(sys.executable) != venv_python:
        os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])
    from lfcs.analysis.parity import main

    sys.exit(main(sys.argv[1:]))
