"""``python -m livereview``: the command line."""

import sys

from livereview.cli import main

sys.exit(main())
