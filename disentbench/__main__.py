import sys

from disentbench.cli import main

sys.exit(main())
