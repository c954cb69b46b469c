"""Allow `python -m chaintrace`."""

from chaintrace.cli import main

raise SystemExit(main())
