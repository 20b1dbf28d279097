"""Image loaders: IDX (gzip or not), NPZ, image folders, Fashion-MNIST."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from sparsescale.data.images import FASHION_MNIST_DIR, load_images, read_idx
from sparsescale.data.loaders import ImageBatches
from sparsescale.errors import SparsescaleError


def _idx_bytes(array: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 8, array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def _write_idx_folder(folder, n_train=40, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir()
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 8, 8)),
        "train-labels-idx1-ubyte": rng.integers(0, 3, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 8, 8)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 3, n_test),
    }
    for name, arr in arrays.items():
        raw = _idx_bytes(arr)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder(tmp_path, gz):
    arrays = _write_idx_folder(tmp_path / "idx", gz=gz)
    data = load_images(tmp_path / "idx")
    assert data.train_images.shape == (40, 8, 8, 1) and data.test_images.shape == (10, 8, 8, 1)
    assert np.array_equal(data.train_images[..., 0], arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.test_labels, arrays["t10k-labels-idx1-ubyte"])


def test_npz_and_single_pass(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "d.npz",
        x_train=rng.integers(0, 256, (30, 6, 6, 3), dtype=np.uint8),
        y_train=np.arange(30) % 4,
        x_test=rng.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8),
        y_test=np.arange(5) % 4,
    )
    data = load_images(tmp_path / "d.npz")
    assert data.n_classes == 4 and data.image_shape == (6, 6, 3)
    loader = ImageBatches(data, batch=5, steps=6, seed=0)
    seen = np.concatenate(
        [loader.get(s)[1].numpy() * 0 + loader.order[s * 5 : (s + 1) * 5] for s in range(6)]
    )
    assert sorted(seen.tolist()) == list(range(30))  # every example exactly once
    x, _ = loader.get(0)
    assert x.shape == (5, 3, 6, 6) and x.min() >= -1 and x.max() <= 1
    with pytest.raises(SparsescaleError, match="--examples"):
        ImageBatches(data, batch=5, steps=7, seed=0)


def test_image_folder(tmp_path):
    from matplotlib.image import imsave

    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / "imgs" / split / cls).mkdir(parents=True)
            imsave(
                tmp_path / "imgs" / split / cls / "a.png",
                np.full((4, 4), 0.5 if cls == "cat" else 1.0),
                cmap="gray",
            )
    data = load_images(tmp_path / "imgs")
    assert (
        data.n_classes == 2 and data.train_images.dtype == np.uint8 and len(data.train_labels) == 2
    )


def test_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x00\x00\x09\x01")
    with pytest.raises(SparsescaleError, match="not an unsigned-byte IDX"):
        read_idx(tmp_path / "bad")
    with pytest.raises(SparsescaleError, match="no such file"):
        load_images(tmp_path / "missing.npz")


def test_fashion_mnist_default():
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed")
    data = load_images(None)
    assert data.train_images.shape == (60000, 28, 28, 1) and data.test_images.shape == (
        10000,
        28,
        28,
        1,
    )
    assert data.n_classes == 10 and np.bincount(data.train_labels).tolist() == [6000] * 10
