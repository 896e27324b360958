"""The command line, ``packr-replay`` (the only layer importing typer and rich).

``app`` is the typer app; ``main`` is the console script. Commands are thin: they open
library objects, call their methods and render the results (``render``); each command
group is a module registered in :data:`app.COMMAND_MODULES`.
"""

from .app import COMMAND_MODULES, app, main

__all__ = ["COMMAND_MODULES", "app", "main"]
