"""`uv run python -m serverimage [--tag NAME]`: build the server image, print its name."""

import sys

from serverimage.build import main

sys.exit(main())
