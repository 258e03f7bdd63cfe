"""The `nlu` command-line interface (Typer). Command modules import `nlu` lazily."""
