"""`python -m deployex_actors` is the `deployex` command."""

import sys

from deployex_actors.cli import main

sys.exit(main())
