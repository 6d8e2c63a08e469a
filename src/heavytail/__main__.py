"""`python -m heavytail analyze PATH`: see ``heavytail.cli``."""

import sys

from heavytail.cli import main

sys.exit(main())
