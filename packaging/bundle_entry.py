"""Entry script of the PyInstaller bundle (packaging/socketeer.spec): the CLI's main()."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
