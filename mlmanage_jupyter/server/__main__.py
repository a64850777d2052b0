"""``python -m mlmanage_jupyter.server``: run the supervisor (see :mod:`.supervisor`)."""

import sys

from mlmanage_jupyter.server.supervisor import main

sys.exit(main())
