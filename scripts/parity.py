"""Check the lfcs learner against episodes recorded from the authors' code: python scripts/parity.py FILE...

Run with a Python that lacks lfcs's dependencies (torch), it re-runs itself with the project's own virtual
environment (.venv beside this script's folder) when there is one, so the check works from any shell of the repo.
Exit 0 if every file agrees within the tolerance, 1 if one does not, 2 for a FILE that is not a golden file.
"""

import argparse
import importlib.util
import os
import sys
import zipfile
from pathlib import Path

PROG = "parity.py"


def golden_file(text: str) -> Path:
    """argparse type: an .npz file of the golden schema (METHOD.md §5)."""
    import numpy as np  # here, not above: the re-run in the project's environment comes first

    from lfcs.analysis.parity import REQUIRED

    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is not allowed: an existing .npz file (no such file)")
    if not zipfile.is_zipfile(path):
        raise argparse.ArgumentTypeError(f"{text} is not allowed: an .npz file (this is not a zip archive)")
    with np.load(path, allow_pickle=False) as npz:
        missing = [key for key in REQUIRED if key not in npz.files]
    if missing:
        raise argparse.ArgumentTypeError(f"{text} is not allowed: a golden file; it lacks {', '.join(missing)}")
    return path


def parse(argv: list[str]):
    from lfcs.running.scripting import OneLineParser

    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=golden_file, help="golden .npz files (../shared/golden/*.npz)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    from lfcs.analysis.parity import main as check

    return check([str(path) for path in parse(argv).files])


if __name__ == "__main__":
    venv_python = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
    if importlib.util.find_spec("torch") is None and venv_python.exists() and Path(sys.executable) != venv_python:
        os.execv(venv_python, [str(venv_python), __file__, *sys.argv[1:]])
    sys.exit(main(sys.argv[1:]))
