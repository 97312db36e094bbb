"""Train a model: the same as `segattn fit ...` (LightningCLI).

python tools/train.py --config configs/demo.yaml [--trainer.max_epochs 20 ...]
"""

import sys

from segattn.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] != ["fit"]:  # DDP ranks are started with this command line, "fit" included
        sys.argv.insert(1, "fit")
    main()
