"""The sliding window in bounded memory: strip stitching equals full accumulation, the
window-wise transform equals the whole-image one, and a decomposable transform never sees the
whole image."""

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

from segattn import AttentionUNet, Segmenter
from segattn.checkpoint import make_record, save
from segattn.cli import main
from segattn.data.io import write_image
from segattn.data.transforms import eval_pipeline, normalization, serialize
from segattn.inference import InputImages, device_normalize
from segattn.sliding import blend_weights, sliding_bands, sliding_window, window_starts
from segattn.window_transform import window_normalize

CLASSES = ["background", "a", "b"]
PALETTE = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]


def full_accumulation(image, predict, window, overlap, batch_size, blending):
    """The oracle: the sliding window accumulated whole, with K×H×W sums and an H×W weight
    plane divided at the end."""
    _, _, height, width = image.shape
    win_h, win_w = min(window, height), min(window, width)
    stride_h, stride_w = max(int(win_h * (1 - overlap)), 1), max(int(win_w * (1 - overlap)), 1)
    corners = [(y, x) for y in window_starts(height, win_h, stride_h) for x in window_starts(width, win_w, stride_w)]
    weights = blend_weights(win_h, win_w, blending, torch.device("cpu"))
    output, norm = None, torch.zeros(1, 1, height, width)
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        probs = predict(torch.cat([image[..., y : y + win_h, x : x + win_w] for y, x in chunk])).float() * weights
        if output is None:
            output = torch.zeros(1, probs.shape[1], height, width)
        for (y, x), p in zip(chunk, probs, strict=True):
            output[0, :, y : y + win_h, x : x + win_w] += p
            norm[0, :, y : y + win_h, x : x + win_w] += weights
    return output / norm


def segmenter(transform, model=None):
    torch.manual_seed(0)
    model = model or AttentionUNet(in_channels=3, num_classes=3, widths=(8, 16, 32))
    return Segmenter(model, CLASSES, transform, PALETTE, 3, device="cpu")


def image(h, w, seed=0, channels=3, dtype=np.uint8, high=256):
    return np.random.default_rng(seed).integers(0, high, (h, w, channels), dtype=dtype)


@pytest.mark.parametrize(
    ("height", "width", "window", "overlap", "batch", "blending"),
    [
        (150, 170, 48, 0.5, 3, "gaussian"),
        (97, 131, 32, 0.25, 4, "constant"),
        (64, 200, 16, 0.0, 5, "gaussian"),  # no overlap: each band is a whole window row
        (40, 300, 48, 0.75, 7, "gaussian"),  # a window taller than the image: one band
        (203, 37, 24, 0.3, 16, "gaussian"),  # a narrow image: each batch spans several window rows
    ],
)
def test_strip_stitching_equals_full_accumulation(height, width, window, overlap, batch, blending):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, height, width)

    def predict(windows):
        with torch.no_grad():
            return conv(windows).softmax(1)

    expected = full_accumulation(x, predict, window, overlap, batch, blending)
    assert torch.equal(sliding_window(x, predict, window, overlap, batch, blending), expected)  # same sums, same order
    bands = list(sliding_bands(x, predict, window, overlap, batch, blending))
    tops = [top for top, _ in bands]
    assert tops == sorted(tops) and tops[0] == 0 and tops[-1] + bands[-1][1].shape[2] == height
    assert all(band.shape[2] <= min(window, height) for _, band in bands)  # strips, not the whole image
    labels = np.concatenate([band[0].argmax(0).numpy() for _, band in bands])
    np.testing.assert_array_equal(labels, expected[0].argmax(0).numpy())


WINDOW_WISE = [
    ("imagenet", np.uint8, 3, 256),
    ({"mean": [0.1, 0.2, 0.3], "std": [0.2, 0.3, 0.4]}, np.uint8, 3, 256),
    ({"mean": [0.1, 0.2, 0.3], "std": [0.2, 0.3, 0.4], "max_pixel_value": 65535}, np.uint16, 3, 65536),
    ("zscore", np.uint8, 3, 256),
    ("zscore", np.uint8, 1, 256),
    ("zscore", np.uint16, 3, 4000),
    ("zscore", np.uint16, 1, 4000),
    ("zscore", np.uint16, 3, 3),  # low contrast: albucore's + 1e-4 on std (or not) shows
    ("zscore", np.uint16, 1, 3),
    ({"percentile": [1, 99]}, np.uint8, 3, 256),
    ({"percentile": [2.5, 97]}, np.uint16, 1, 4000),
    ({"percentile": [0, 100]}, np.uint16, 3, 65536),
    ({"window": [2000, 4000]}, np.uint16, 1, 4000),
    ({"window": [100, 50]}, np.uint8, 3, 256),
    ("to_float", np.uint8, 3, 256),
    ("to_float", np.uint16, 1, 65536),
]


@pytest.mark.parametrize(("spec", "dtype", "channels", "high"), WINDOW_WISE)
def test_window_wise_normalisation_equals_the_whole_image_transform(spec, dtype, channels, high):
    pipeline = A.Compose([A.ToFloat()]) if spec == "to_float" else eval_pipeline(spec, channels)
    raw = image(131, 97, 1, channels, dtype, high)
    whole = pipeline(image=raw)["image"].reshape(raw.shape).transpose(2, 0, 1)
    normalize = window_normalize(pipeline, raw)
    pixels = torch.from_numpy(raw).permute(2, 0, 1)[None]
    corners = [(0, 0), (40, 57), (91, 25)]  # windows as the sliding window cuts them
    windows = torch.cat([pixels[..., y : y + 40, x : x + 40] for y, x in corners])
    expected = np.stack([whole[:, y : y + 40, x : x + 40] for y, x in corners])
    np.testing.assert_allclose(normalize(windows).numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "pipeline",
    [
        A.Compose([A.Resize(64, 64), A.Normalize()]),
        A.Compose([A.Normalize(p=0.5)]),
        A.Compose([A.Normalize()], p=0.5),
        A.Compose([A.Normalize(normalization="min_max")]),
        A.Compose([A.OneOf([A.Normalize()])]),
    ],
)
def test_other_transforms_have_no_window_wise_form(pipeline):
    assert window_normalize(pipeline, image(8, 8)) is None


def test_only_fixed_steps_have_a_form_without_the_image():
    assert window_normalize(eval_pipeline("imagenet", 3), None) is not None
    assert window_normalize(eval_pipeline("zscore", 3), None) is None  # needs the image's statistics
    assert device_normalize(eval_pipeline("imagenet", 3), torch.device("cpu")) is None


@pytest.mark.parametrize(("spec", "tta"), [("imagenet", None), ("imagenet", "flip"), ("zscore", None)])
def test_segmenter_slides_as_with_the_whole_image_transformed(spec, tta):
    """The same normalisation with a second, idle step has no window-wise form: the image is
    transformed whole. Labels and probabilities agree (ImageNet's to the bit)."""
    step = normalization(spec, 3)
    window_wise, whole = segmenter(A.Compose([step])), segmenter(A.Compose([step, A.NoOp()]))
    img = image(100, 140, 2)
    options = {"slide": (48, 0.25), "batch_size": 5, "tta": tta}
    probs = window_wise.predict(img, return_probs=True, **options)[0]
    np.testing.assert_allclose(probs, whole.predict(img, return_probs=True, **options)[0], rtol=0, atol=1e-5)
    labels = window_wise.predict(img, **options)[0]
    np.testing.assert_array_equal(labels, probs.argmax(0))
    if spec == "imagenet":
        np.testing.assert_array_equal(labels, whole.predict(img, **options)[0])


class Spy(A.Compose):
    """A pipeline that records the shape of every image it transforms."""

    def __init__(self, transforms):
        super().__init__(transforms)
        self.seen = []

    def __call__(self, *args, **data):
        self.seen.append(data["image"].shape)
        return super().__call__(*args, **data)


def test_a_window_wise_transform_never_sees_the_whole_image():
    img = image(90, 120, 3)
    spy = Spy([normalization("zscore", 3)])
    (labels,) = segmenter(spy).predict(img, slide=(32, 0.25))
    assert spy.seen == [] and labels.shape == (90, 120)
    sample = InputImages([img], 3, spy, windows=True)[0]
    assert sample["tensor"].data_ptr() == img.ctypes.data  # the pixels as given: no copy
    other = Spy([A.Normalize(normalization="min_max")])
    segmenter(other).predict(img, slide=(32, 0.25))
    assert other.seen == [(90, 120, 3)]  # no window-wise form: transformed whole, as before


def test_predict_equals_infer_through_the_cli(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model_args = {"widths": [8, 16, 32]}
    model = AttentionUNet(in_channels=3, num_classes=3, **model_args)
    record = make_record("attention_unet", model_args, 3, CLASSES, PALETTE, serialize(eval_pipeline("zscore", 3)))
    save(tmp_path / "model.ckpt", model.state_dict(), record)
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in/a.png", image(70, 90, 4))
    write_image(tmp_path / "in/b.png", image(45, 130, 5))
    monkeypatch.setattr("sys.argv", ["segattn"])
    main(["infer", "--ckpt", str(tmp_path / "model.ckpt"), "--input", str(tmp_path / "in"),
          "--output", str(tmp_path / "out"), "--slide", "40", "--overlap", "0.5", "--batch-size", "3",
          "--workers", "1", "--device", "cpu"])  # fmt: skip
    seg = Segmenter.from_checkpoint(tmp_path / "model.ckpt", device="cpu")
    predicted = seg.predict(tmp_path / "in", slide=(40, 0.5), batch_size=3)
    for name, labels in zip(("a", "b"), predicted, strict=True):
        np.testing.assert_array_equal(np.array(Image.open(tmp_path / f"out/{name}.png")), labels)
