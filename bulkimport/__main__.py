"""``python -m bulkimport`` and the ``bulkimport`` command.

Kept light: worker processes (see :mod:`bulkimport.rows.workers`) re-import the
main module when they start, and must not pay for the whole CLI.
"""


def run() -> None:
    """Run the command line (imported only when called)."""
    from bulkimport.cli import main

    main()


if __name__ == "__main__":
    run()
