"""Check the lfcs learner against episodes recorded from the authors' code: python scripts/parity.py FILE..."""

import sys

from lfcs.parity import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
