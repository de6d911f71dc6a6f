"""``python -m livereview.demo build [--out DIR]``: regenerate the demo recording and its references."""

import sys

from livereview.demo.build import main

sys.exit(main())
