"""``python -m colorkit``: the command line (also what ``torchrun -m colorkit`` runs)."""

import sys

from colorkit.cli import main

sys.exit(main())
