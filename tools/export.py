"""The same as `segattn export ...` (see `segattn export --help`)."""

import sys

from segattn.cli import main

if __name__ == "__main__":
    main(["export", *sys.argv[1:]])
