import sys

from sscp_ops.cli import main

sys.exit(main())
