import sys

from samic_fast.cli import main

sys.exit(main())
