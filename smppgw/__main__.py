"""``python -m smppgw`` runs the command line."""

import sys

from smppgw.cli import main

sys.exit(main())
