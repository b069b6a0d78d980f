"""The command line: parses options, calls the API, says where files went."""
from bagkit.cli.main import cli, main

__all__ = ["cli", "main"]
