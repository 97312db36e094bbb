"""The CUDA paths: bf16/fp16 autocast, channels_last, torch.compile, stitching on the GPU, a 10k×10k
image, bf16-mixed training, metrics on the GPU. Skipped where no CUDA GPU is present (CI)."""

import lightning as L
import numpy as np
import pytest
import torch

from segattn import AttentionUNet, InputError, SegmentationTask, Segmenter
from segattn.data import SegDataModule, SyntheticShapes
from segattn.data.transforms import eval_pipeline
from segattn.inference import InputImages, device_normalize, stitch_device
from segattn.metrics import SegMetrics
from segattn.sliding import sliding_window

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: the GPU paths are not run")
CLASSES = ["background", "a", "b"]


def segmenter(
    device: str, precision: str = "fp32", compile: bool = False, widths=(16, 32, 64), normalize="imagenet"
) -> Segmenter:
    torch.manual_seed(0)
    model = AttentionUNet(num_classes=3, widths=widths)
    palette = [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
    return Segmenter(model, CLASSES, eval_pipeline(normalize, 3), palette, 3, device, precision, compile)


def images(n: int, h: int, w: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def probs(seg: Segmenter, inputs: list[np.ndarray], **options) -> np.ndarray:
    return np.stack(seg.predict(inputs, batch_size=4, return_probs=True, **options))


def test_auto_precision_is_bf16_on_the_gpu_and_close_to_fp32_on_the_cpu():
    inputs = images(6, 97, 131)  # odd sizes: the network pads to its stride
    reference = probs(segmenter("cpu"), inputs)
    auto = segmenter("auto", "auto")
    assert auto.device.type == "cuda" and auto.dtype == torch.bfloat16
    first_conv = next(p for p in auto.model.parameters() if p.ndim == 4 and p.shape[-1] == 3)
    assert first_conv.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(probs(segmenter("cuda"), inputs), reference, atol=5e-3)  # cuDNN may use TF32
    np.testing.assert_allclose(probs(auto, inputs), reference, atol=3e-2)
    np.testing.assert_allclose(probs(segmenter("cuda", "fp16"), inputs), reference, atol=1e-2)


def test_device_normalize_equals_the_albumentations_transform_bit_for_bit():
    rng = np.random.default_rng(0)
    explicit = {"mean": [0.1, 0.2, 0.3], "std": [0.2, 0.3, 0.4], "max_pixel_value": 4000}
    for spec, dtype, high in (("imagenet", np.uint8, 256), (explicit, np.uint16, 4000)):
        pipeline = eval_pipeline(spec, 3)
        normalize = device_normalize(pipeline, torch.device("cuda"))
        image = rng.integers(0, high, (37, 53, 3), dtype=dtype)
        raw = InputImages([image], 3, pipeline, raw=True)[0]["tensor"]
        expected = pipeline(image=image)["image"].transpose(2, 0, 1)
        np.testing.assert_array_equal(normalize(raw[None].cuda())[0].cpu().numpy(), expected)
    assert device_normalize(eval_pipeline("zscore", 3), torch.device("cuda")) is None  # per-image statistics
    assert device_normalize(eval_pipeline("imagenet", 3), torch.device("cpu")) is None


def test_8_and_16_bit_inputs_of_one_size_are_not_stacked_together():
    # a normalisation for 16-bit images, which takes 8-bit ones too (a 16-bit image with an 8-bit one is an error)
    seg = segmenter("cuda", normalize={"mean": [0.5] * 3, "std": [0.25] * 3, "max_pixel_value": 65535})
    rng = np.random.default_rng(0)
    img8 = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    masks = seg.predict([img8, img8.astype(np.uint16) * 257, img8], batch_size=4)
    assert [m.shape for m in masks] == [(40, 48)] * 3
    np.testing.assert_array_equal(masks[0], masks[2])


def test_compiled_equals_eager():
    inputs = images(8, 128, 128)
    eager = probs(segmenter("cuda", "bf16"), inputs)
    np.testing.assert_allclose(probs(segmenter("cuda", "bf16", compile=True), inputs), eager, atol=2e-2)


def test_stitching_on_the_gpu_equals_stitching_on_the_cpu():
    torch.manual_seed(0)
    image = torch.randn(1, 3, 300, 500)
    weights = torch.randn(3, 3, 1, 1, device="cuda")

    def predict(windows: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(windows, weights).softmax(1)

    on_gpu = sliding_window(image, predict, 128, 0.25, 3, device="cuda", output_device="cuda")
    on_cpu = sliding_window(image, predict, 128, 0.25, 3, device="cuda", output_device="cpu")
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-6, rtol=1e-5)


def test_stitch_device_falls_back_to_the_cpu_when_the_image_would_not_fit():
    free, _ = torch.cuda.mem_get_info()
    assert stitch_device(torch.device("cuda"), 2, (1024, 1024)) == torch.device("cuda")
    side = int((free / 12) ** 0.5) + 1  # 3 planes of 4 bytes: a quarter of the free memory is exceeded
    assert stitch_device(torch.device("cuda"), 2, (side, side)) == torch.device("cpu")


def test_a_10k_image_through_the_sliding_window_keeps_gpu_memory_to_a_window_batch():
    seg = segmenter("cuda", "bf16")
    big = np.random.default_rng(0).integers(0, 256, (10_000, 10_000, 3), dtype=np.uint8)
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    (labels,) = seg.predict(big, batch_size=8, slide=(512, 0.25))
    peak_gib = (torch.cuda.max_memory_allocated() - before) / 2**30
    print(f"10k×10k, slide 512/0.25, batch 8: peak GPU memory {peak_gib:.2f} GiB above the model")
    assert labels.shape == (10_000, 10_000) and labels.dtype == np.uint8
    # the stitched sum (4 planes × 10⁸ px × 4 B = 1.5 GiB) plus one window batch; a whole-image
    # forward would need tens of GiB
    assert peak_gib < 4


def test_bf16_mixed_training_on_the_gpu_then_inference(synthetic_root, tmp_path):
    L.seed_everything(0)
    data = [SyntheticShapes(synthetic_root, s, n_train=24, n_val=8, size=64, seed=3) for s in ("train", "val")]
    datamodule = SegDataModule(*data, crop_size=64, batch_size=8)
    task = SegmentationTask(datamodule.classes, model_args={"widths": [16, 32, 64]}, lr=3e-3)
    trainer = L.Trainer(accelerator="gpu", devices=1, precision="bf16-mixed", max_epochs=15, default_root_dir=tmp_path,
                        logger=False, enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    before = trainer.validate(task, datamodule, verbose=False)[0]
    trainer.fit(task, datamodule)
    after = trainer.validate(task, datamodule, verbose=False)[0]
    assert after["val/loss"] < 0.8 * before["val/loss"]  # 45 steps
    assert after["val/mIoU"] > before["val/mIoU"]
    (best,) = tmp_path.rglob("best*.ckpt")
    seg = Segmenter.from_checkpoint(best)  # device and precision "auto": cuda, bf16
    (mask,) = seg.predict(data[1].load(0)["image"])
    assert seg.device.type == "cuda" and mask.shape == (64, 64)


def test_an_image_too_large_for_one_forward_is_a_clear_error():
    seg = segmenter("cuda", "bf16", widths=(32, 64))  # 32 × 8192² ≥ 2**31: cuDNN and upsampling refuse
    big = np.zeros((8192, 8192, 3), dtype=np.uint8)
    with pytest.raises(InputError, match=r"too large for one forward.*slide=\(512, 0.25\)"):
        seg.predict(big)


def test_metrics_on_the_gpu_equal_the_cpu():
    generator = torch.Generator().manual_seed(0)
    preds = torch.randint(0, 5, (4, 64, 64), generator=generator)
    target = torch.randint(0, 6, (4, 64, 64), generator=generator)
    target[target == 5] = 255
    cpu, gpu = SegMetrics(5), SegMetrics(5).to("cuda")
    cpu.update(preds, target)
    gpu.update(preds.cuda(), target.cuda())
    for key, value in cpu.compute().items():
        torch.testing.assert_close(gpu.compute()[key].cpu(), value, equal_nan=True)
