"""`python -m tb_lossdoctor LOGDIR ...` is the `lossdoctor` command."""

import sys

from tb_lossdoctor.cli import main

sys.exit(main())
