"""Train a model: the same as `segattn fit ...` (LightningCLI).

python tools/train.py --config configs/demo.yaml [--trainer.max_epochs 20 ...]
"""

import sys

from segattn.cli import main

if __name__ == "__main__":
    main(["fit", *sys.argv[1:]])
