"""`python -m bench --campaigns 10000`: see `bench.cli`."""

import sys

from bench.cli import main

sys.exit(main())
