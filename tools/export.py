"""The same as `segattn export ...` (see `segattn export --help`)."""

import sys

from segattn.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] != ["export"]:
        sys.argv.insert(1, "export")
    main()
