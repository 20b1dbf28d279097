"""The typer application that every command module registers on."""

import typer

app = typer.Typer(
    name="sparsescale",
    help="Measure, fit and use scaling laws for weight-sparse Transformers.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
