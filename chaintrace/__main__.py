"""Allow `python -m chaintrace`."""

from chaintrace.cli.app import main

raise SystemExit(main())
