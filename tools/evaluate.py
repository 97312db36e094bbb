"""Score a checkpoint on a split of a config's data: the same as `segattn evaluate ...`.

python tools/evaluate.py --ckpt runs/demo/.../best.ckpt --config configs/demo.yaml [--out DIR]
"""

import sys

from segattn.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] != ["evaluate"]:
        sys.argv.insert(1, "evaluate")
    main()
