"""``python -m hcsvfs.cli`` runs the command line."""

from .app import main

main()
