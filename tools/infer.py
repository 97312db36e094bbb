"""The same as `segattn infer ...` (see `segattn infer --help`)."""

import sys

from segattn.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] != ["infer"]:
        sys.argv.insert(1, "infer")
    main()
