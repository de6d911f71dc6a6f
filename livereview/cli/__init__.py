"""The ``livereview`` command line: run, export, override, undo, serve, rerun, classify, snippets, knowledge.

Each subcommand is registered by an ``add_*_command(subparsers)`` function that
sets ``handler``; errors users can fix print one line and exit with status 2.

May import: everything below it. Nothing imports the CLI.
"""

from livereview.cli.commands import main

__all__ = ["main"]
