"""Image classification data: Fashion-MNIST (IDX), NPZ arrays, image folders.

Every loader returns an `ImageData`: uint8 images (N, H, W, C) and int labels
for a training split and a fixed, disjoint test split. The built-in default is
Fashion-MNIST from Debian's dataset-fashion-mnist package.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsescale.errors import SparsescaleError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class ImageData:
    train_images: np.ndarray  # (N, H, W, C) uint8
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    n_classes: int
    source: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])


def read_idx(path: Path) -> np.ndarray:
    """An IDX array (the MNIST file format), gzip-compressed or not."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SparsescaleError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise SparsescaleError(
            f"{path}: IDX header says {shape} but the file holds {data.size} values"
        )
    return data.reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise SparsescaleError(f"--corpus {folder}: no {stem}[.gz] here")


def load_idx_folder(folder: Path) -> ImageData:
    """MNIST-style folder: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-*."""
    parts = [
        read_idx(_find(folder, f"{split}-{kind}"))
        for split in ("train", "t10k")
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
    ]
    train_x, train_y, test_x, test_y = parts
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    return ImageData(
        train_x[..., None],
        train_y.astype(np.int64),
        test_x[..., None],
        test_y.astype(np.int64),
        n_classes,
        str(folder),
    )


def load_npz(path: Path) -> ImageData:
    """NPZ with x_train, y_train, x_test, y_test; images (N, H, W) or (N, H, W, C) uint8."""
    with np.load(path) as z:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z]
        if missing:
            raise SparsescaleError(
                f"--corpus {path}: NPZ lacks {', '.join(missing)} (has {', '.join(z.files)})"
            )
        arrays = [z[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    xs = [x if x.ndim == 4 else x[..., None] for x in arrays[::2]]
    if xs[0].dtype != np.uint8:
        raise SparsescaleError(f"--corpus {path}: x_train must be uint8 images, got {xs[0].dtype}")
    ys = [y.astype(np.int64).reshape(-1) for y in arrays[1::2]]
    n_classes = int(max(ys[0].max(), ys[1].max())) + 1
    return ImageData(xs[0], ys[0], xs[1], ys[1], n_classes, str(path))


def load_image_folder(folder: Path) -> ImageData:
    """folder/train/<class>/*.png and folder/test/<class>/*.png (classes sorted by name)."""
    from matplotlib.image import imread

    splits = {}
    for split in ("train", "test"):
        root = folder / split
        if not root.is_dir():
            raise SparsescaleError(
                f"--corpus {folder}: an image folder needs train/ and test/ subfolders"
            )
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        images, labels = [], []
        for label, name in enumerate(classes):
            for path in sorted((root / name).iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    img = imread(path)
                    if img.dtype != np.uint8:
                        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
                    images.append(img if img.ndim == 3 else img[..., None])
                    labels.append(label)
        if not images:
            raise SparsescaleError(f"--corpus {root}: no images")
        if len({im.shape for im in images}) > 1:
            raise SparsescaleError(f"--corpus {root}: images have different sizes")
        splits[split] = (np.stack(images), np.asarray(labels, dtype=np.int64), classes)
    (tx, ty, classes), (vx, vy, _) = splits["train"], splits["test"]
    return ImageData(tx, ty, vx, vy, len(classes), str(folder))


def load_images(corpus: str | Path | None = None) -> ImageData:
    """Images from an IDX folder, an .npz file or an image folder; None means
    Fashion-MNIST from Debian's dataset-fashion-mnist."""
    if corpus is None:
        if not FASHION_MNIST_DIR.is_dir():
            raise SparsescaleError(
                "no default image data: Debian's dataset-fashion-mnist is not installed "
                "(apt-get install dataset-fashion-mnist); or point --corpus at an IDX folder, "
                ".npz file or image folder"
            )
        return load_idx_folder(FASHION_MNIST_DIR)
    path = Path(corpus).expanduser()
    if not path.exists():
        raise SparsescaleError(f"--corpus {path}: no such file or folder")
    if path.suffix == ".npz":
        return load_npz(path)
    if path.is_dir() and any(p.name.startswith("train-images") for p in path.iterdir()):
        return load_idx_folder(path)
    if path.is_dir():
        return load_image_folder(path)
    raise SparsescaleError(
        f"--corpus {path}: expected an IDX folder, an .npz file or an image folder"
    )
