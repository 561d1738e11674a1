"""``python -m medgan_aug`` runs the ``medgan-aug`` command line (also under torchrun)."""

import sys

from medgan_aug.cli import main

sys.exit(main())
