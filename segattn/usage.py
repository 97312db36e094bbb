"""What `segattn`, `segattn -h` and `segattn --help` print: every command with one line of what it
does, then how to get a command's own help (each command's --help stays its parser's)."""

from __future__ import annotations

import difflib

# In the order a newcomer meets them; fit, validate and test are LightningCLI's.
COMMANDS = {
    "demo": "synthetic data → fit → evaluate → predictions, on the CPU in a few minutes",
    "fit": "train a model on a config's data (every config key is also a flag: --model.lr 0.001)",
    "validate": "score a checkpoint (--ckpt_path) on the config's val split",
    "test": "score a checkpoint (--ckpt_path) on the config's test split",
    "evaluate": "score a checkpoint on a split: per-class table, metrics.json, confusion, worst images",
    "infer": "label maps (PNGs; NIfTI for volumes) for files, folders or globs, on one or many devices",
    "serve": "a checkpoint as an HTTP service: POST /predict, GET /health, /info, and a page at /",
    "export": "ONNX export of a checkpoint, checked against onnxruntime",
}
LIGHTNING_COMMANDS = ("fit", "validate", "test")
# commands that went, each with what replaces it: LightningCLI's predict ran the network a second way,
# without the Segmenter's sliding window, TTA and volume grids; infer is the one inference path
RETIRED = {
    "predict": "predict: retired; `segattn infer --ckpt CKPT --input IMAGES --output FOLDER` writes the label "
    "maps of files, folders or globs through the Segmenter (sliding window, TTA, volumes in their own grid)"
}
OWN_COMMANDS = tuple(command for command in COMMANDS if command not in LIGHTNING_COMMANDS)


def overview() -> str:
    """The text of `segattn --help`."""
    width = max(map(len, COMMANDS))
    lines = [f"  {command:{width}}  {what}" for command, what in COMMANDS.items()]
    return "\n".join(
        [
            "usage: segattn <command> [options]",
            "",
            "Attention-based semantic segmentation: train, score and run an Attention U-Net.",
            "",
            "commands:",
            *lines,
            "",
            "`segattn <command> --help` lists a command's options, e.g. `segattn fit --help`.",
            "First steps: `segattn demo`, then `segattn fit --config configs/demo.yaml`.",
        ]
    )


def unknown_command(name: str) -> str:
    """The error message for a command that is not one of COMMANDS (a retired one: what replaces it)."""
    if name in RETIRED:
        return RETIRED[name]
    close = difflib.get_close_matches(name, COMMANDS, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return f"{name}: unknown command; {guess}expected one of {', '.join(COMMANDS)} (`segattn --help`)"
