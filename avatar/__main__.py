"""``python -m avatar <command>``: the same as the ``avatar`` console command."""

import sys

from avatar.cli.main import main

sys.exit(main())
