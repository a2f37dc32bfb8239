"""The `aiotrade` command line. `app` lives in `pipeline.cli.app`; each command group has its own module."""
