"""Segmenter: input kinds, equality with a direct forward, sliding window, TTA, infer."""

import numpy as np
import pytest
import torch
from torch import nn

from segattn import AttentionUNet, InputError, MissingPathError, Segmenter
from segattn.data.io import write_image
from segattn.data.transforms import eval_pipeline
from segattn.infer import run_infer
from segattn.sliding import sliding_window

CLASSES = ["background", "a", "b"]


def segmenter(model=None, channels=3, normalize="imagenet"):
    torch.manual_seed(0)
    model = model or AttentionUNet(in_channels=channels, num_classes=3, widths=(8, 16, 32))
    return Segmenter(model, CLASSES, eval_pipeline(normalize, channels), [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
                     channels, device="cpu")  # fmt: skip


def image(h, w, seed=0, channels=3):
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def direct(seg, img):
    x = seg.transform(image=img)["image"]
    with torch.inference_mode():
        return seg.model(torch.from_numpy(x.transpose(2, 0, 1).copy())[None]).argmax(1)[0].numpy()


def test_every_input_kind_at_its_own_size(tmp_path):
    seg = segmenter()
    (tmp_path / "dir").mkdir()
    write_image(tmp_path / "dir/b.png", image(40, 30, 1))
    write_image(tmp_path / "dir/a.jpg", image(17, 23, 2))
    write_image(tmp_path / "one.png", image(33, 21, 3))
    grey = image(25, 19, 4, channels=1)[..., 0]
    inputs = [tmp_path / "one.png", tmp_path / "dir", image(97, 131), grey, str(tmp_path / "dir/*.png")]
    masks = seg.predict(inputs, batch_size=2)
    assert [m.shape for m in masks] == [(33, 21), (17, 23), (40, 30), (97, 131), (25, 19), (40, 30)]
    assert all(m.dtype == np.uint8 and m.max() < 3 for m in masks)


def test_16_bit_grey_with_a_one_channel_model():
    seg = segmenter(channels=1, normalize={"window": [2000, 4000]})
    img16 = np.random.default_rng(0).integers(0, 4000, (45, 50), dtype=np.uint16)
    (mask,) = seg.predict(img16)
    assert mask.shape == (45, 50)
    np.testing.assert_array_equal(mask, direct(seg, img16[..., None]))


def test_equals_a_direct_forward_and_batching_does_not_change_labels():
    seg = segmenter()
    images = [image(64, 48, s) for s in range(5)]
    batched = seg.predict(images, batch_size=4)
    for img, mask in zip(images, batched, strict=True):
        np.testing.assert_array_equal(mask, direct(seg, img))


def test_workers_give_the_same_results(tmp_path):
    for i in range(4):
        write_image(tmp_path / f"{i}.png", image(30, 40, i))
    seg = segmenter()
    for a, b in zip(seg.predict(tmp_path, workers=2), seg.predict(tmp_path), strict=True):
        np.testing.assert_array_equal(a, b)


def test_sliding_window_larger_than_the_image_equals_whole_image():
    seg = segmenter()
    img = image(70, 90)
    whole = seg.predict(img, return_probs=True)[0]
    slid = seg.predict(img, slide=(128, 0.25), return_probs=True)[0]
    np.testing.assert_allclose(slid, whole, atol=1e-5)
    assert whole.shape == (3, 70, 90)


def test_sliding_window_covers_and_blends_without_seams():
    """A translation-invariant network (1×1 convs) on a constant image: every window predicts the
    same, so any seam would come from the stitching alone."""
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 3, 1))
    seg = segmenter(model)
    img = np.full((150, 170, 3), 120, np.uint8)
    for blending in ("gaussian", "constant"):
        probs = seg.predict(img, slide=(48, 0.5), blending=blending, return_probs=True)[0]
        assert np.abs(np.diff(probs, axis=1)).max() < 1e-5 and np.abs(np.diff(probs, axis=2)).max() < 1e-5
    counts = sliding_window(torch.zeros(1, 1, 150, 170), lambda w: torch.ones_like(w), 48, 0.5, blending="constant")
    torch.testing.assert_close(counts, torch.ones(1, 1, 150, 170))  # every pixel covered, weights normalised


def test_flip_tta_equals_no_tta_for_a_flip_symmetric_model_and_input():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 1))
    with torch.no_grad():  # kernels symmetric under a horizontal flip: the network commutes with it
        model[0].weight.copy_((model[0].weight + model[0].weight.flip(-1)) / 2)
    seg = segmenter(model)
    half = image(40, 25)
    symmetric = np.concatenate([half, half[:, ::-1]], axis=1)
    plain = seg.predict(symmetric, return_probs=True)[0]
    np.testing.assert_allclose(seg.predict(symmetric, tta="flip", return_probs=True)[0], plain, atol=1e-6)
    scaled = seg.predict(symmetric, tta="flip+scales", scales=(0.5, 1.0), return_probs=True)[0]
    assert scaled.shape == plain.shape and np.allclose(scaled.sum(0), 1, atol=1e-5)


def test_bf16_autocast_on_cpu_agrees_with_fp32():
    seg32 = segmenter()
    seg16 = Segmenter(seg32.model, CLASSES, seg32.transform, seg32.palette, 3, "cpu", precision="bf16")
    img = image(64, 64)
    agreement = (seg16.predict(img)[0] == seg32.predict(img)[0]).mean()
    assert agreement > 0.9


def test_bad_inputs_are_named(tmp_path):
    seg = segmenter()
    with pytest.raises(MissingPathError, match="nothing"):
        seg.predict(tmp_path / "nothing.png")
    with pytest.raises(InputError, match="pattern matches no image"):
        seg.predict(str(tmp_path / "*.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        seg.predict(tmp_path / "empty")
    with pytest.raises(InputError, match="float64"):
        seg.predict(np.zeros((4, 4, 3)))
    with pytest.raises(InputError, match="tta"):
        seg.predict(image(8, 8), tta="rotate")
    with pytest.raises(InputError, match="precision"):
        Segmenter(seg.model, CLASSES, seg.transform, seg.palette, 3, "cpu", precision="fp8")
    with pytest.raises(InputError, match=r"array input \(8, 8, 3\): 16-bit pixels \(up to 1000\).*max_pixel_value 255"):
        seg.predict(np.full((8, 8, 3), 1000, np.uint16))  # ImageNet's normalisation is for 8-bit images
    with pytest.raises(InputError, match="device: unknown device 'gpu'"):
        Segmenter(seg.model, CLASSES, seg.transform, seg.palette, 3, "gpu")
    with pytest.raises(InputError, match="workers: expected 0 or more"):
        seg.predict(image(8, 8), workers=-1)
    for not_one in (tmp_path, str(tmp_path / "*.png"), [image(8, 8)]):
        with pytest.raises(InputError, match="attention: takes one image file or array"):
            seg.attention(not_one)
    write_image(tmp_path / "a.png", image(8, 8))
    with pytest.raises(InputError, match="exists and is not a folder"):
        run_infer(seg, tmp_path / "a.png", tmp_path / "a.png", workers=0)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"scales": (0.5, 1.0)}, r"scales \[0.5, 1.0\] apply to tta='flip\+scales' only; tta is None"),
        ({"tta": "flip", "scales": (0.5,)}, "tta is 'flip'"),
        ({"blending": "constant"}, "blending 'constant' applies to sliding-window inference only"),
        ({"slide": 0}, "slide: expected a positive window side, got 0"),
        ({"slide": (64, 1.0)}, r"slide: expected an overlap share in \[0, 1\), got 1.0"),
        ({"slide": (64, 0.25, 2)}, "slide: expected a window side or"),
        ({"slide": 64, "blending": "cosine"}, "blending: unknown value 'cosine'"),
    ],
)
def test_options_without_effect_or_out_of_range_are_named(options, named):
    with pytest.raises(InputError, match=named):
        segmenter().predict(image(8, 8), **options)


def test_a_window_alone_slides_with_a_quarter_overlap():
    seg, img = segmenter(), image(70, 90)
    np.testing.assert_array_equal(
        seg.predict(img, slide=48, return_probs=True)[0], seg.predict(img, slide=(48, 0.25), return_probs=True)[0]
    )


def test_infer_writes_one_mask_per_image_and_skips_existing(tmp_path):
    for i in range(5):
        write_image(tmp_path / f"in_{i}.jpg", image(20 + i, 30, i))
    seg = segmenter()
    out = tmp_path / "out"
    first = run_infer(seg, str(tmp_path / "in_*.jpg"), out, batch_size=2, overlay_images=True, workers=0)
    assert first.written == 5 and first.skipped == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"in_{i}.png" for i in range(5)]
    assert len(list(out.glob("*_overlay.jpg"))) == 5
    from PIL import Image

    saved = np.array(Image.open(out / "in_3.png"))
    np.testing.assert_array_equal(saved, seg.predict(tmp_path / "in_3.jpg")[0])
    second = run_infer(seg, str(tmp_path / "in_*.jpg"), out, workers=0)
    assert second.written == 0 and second.skipped == 5
    assert run_infer(seg, str(tmp_path / "in_*.jpg"), out, workers=0, overwrite=True).written == 5


def test_folded_batchnorm_copy_matches_the_original_network_which_stays_untouched():
    torch.manual_seed(1)
    model = AttentionUNet(in_channels=3, num_classes=3, widths=(8, 16, 32)).eval()
    for m in model.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    seg = segmenter(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the caller's model is not changed
    assert not any(isinstance(m, nn.BatchNorm2d) for m in seg.model.modules())
    img = image(50, 70)
    x = torch.from_numpy(seg.transform(image=img)["image"].transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        expected = model(x).softmax(1)[0].numpy()
    np.testing.assert_allclose(seg.predict(img, return_probs=True)[0], expected, atol=1e-5)


def test_attention_grid_and_overlay_pictures():
    from segattn.viz import attention_grid, overlay

    img = image(20, 30)
    maps = {"gate1": np.linspace(0, 1, 50).reshape(5, 10), "gate2": np.ones((3, 4))}
    grid = attention_grid(img, maps)
    assert grid.shape == (20, 3 * 30 + 2 * 4, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:, :30], img)  # the image first, untouched
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 1
    blended = overlay(img, mask, [[0, 0, 0], [255, 0, 0]])
    np.testing.assert_array_equal(blended[0, 0], img[0, 0])  # background pixels stay as they were
    assert (blended[5:10, 5:10, 0] >= img[5:10, 5:10, 0] // 2).all()


def test_attention_gives_the_label_map_and_every_gate_at_the_image_size():
    seg = segmenter(AttentionUNet(num_classes=3, widths=(8, 16, 32), gate_finest=True))
    img = image(37, 51)
    mask, maps = seg.attention(img)
    np.testing.assert_array_equal(mask, seg.predict(img)[0])
    assert sorted(maps) == ["gate0", "gate1"]  # in the decoder's order, coarse to fine
    for alpha in maps.values():
        assert alpha.shape == (37, 51) and alpha.dtype == np.float32 and 0 <= alpha.min() <= alpha.max() <= 1
    with pytest.raises(InputError, match="attention: Sequential has no attention maps"):
        segmenter(nn.Sequential(nn.Conv2d(3, 3, 1))).attention(img)
