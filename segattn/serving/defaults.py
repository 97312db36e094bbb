"""`segattn serve`'s defaults, one place for the command line and the library (importing this
module does not import LitServe, so the command line can show them without the `serve` extra)."""

MAX_BYTES = 32 * 2**20  # one request's body
MAX_PIXELS = 64 * 2**20  # one image's width × height (8192²), or one volume's voxels
MAX_BATCH_SIZE = 8  # concurrent requests batched together
BATCH_TIMEOUT = 0.01  # seconds a batch waits to fill
