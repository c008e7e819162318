"""``python -m bulkimport``: the same as the ``bulkimport`` command."""

from bulkimport.cli import main

if __name__ == "__main__":  # worker processes import this module too
    main()
