"""The `strongroom` console script and `python -m strongroom`.

This module imports nothing on purpose. Pipeline workers are spawned processes, and a spawned
process re-imports its parent's main module: the console script, which imports this module.
Importing the CLI here (typer, rich, the catalogue) would cost every worker about half a second
before its first task.
"""


def main() -> None:
    try:
        from strongroom.cli import main as cli_main
    except KeyboardInterrupt:  # Ctrl-C while starting: one line, like any error, no traceback
        import sys

        sys.stderr.write("error: interrupted; nothing was done\n")
        raise SystemExit(130) from None
    cli_main()


if __name__ == "__main__":
    main()
