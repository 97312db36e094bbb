"""The same as `segattn infer ...` (see `segattn infer --help`)."""

import sys

from segattn.cli import main

if __name__ == "__main__":
    main(["infer", *sys.argv[1:]])
