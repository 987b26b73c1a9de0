"""``python -m vae_lib`` runs the command line (see :mod:`vae_lib.cli`)."""
import sys

from .cli import main

sys.exit(main())
