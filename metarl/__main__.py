"""`python -m metarl` runs the command line."""

from metarl.cli import main

raise SystemExit(main())
