"""`python -m orchestrator.cli` = the `skiff` command."""

import sys

from orchestrator.cli.main import main

sys.exit(main())
