"""Image datasets: digits split and scaling, IDX and CIFAR readers on tiny files, clear errors."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from sfbench.data import DATASETS, get_dataset, images
from sfbench.data.readers import read_cifar_batch, read_idx
from sfbench.errors import DataFileError

# ---------------------------------------------------------------- scaling


@pytest.mark.parametrize("levels", [17, 256])
def test_scaling_puts_levels_on_a_grid_from_minus_one_to_one(levels):
    v = np.arange(levels)
    x = images.to_model_scale(v, levels)
    assert x.dtype == np.float32 and x[0] == -1.0 and x[-1] == 1.0
    np.testing.assert_allclose(np.diff(x), 2.0 / (levels - 1), rtol=1e-5)
    assert (images.to_levels(x, levels) == v).all()
    # Rounding to the nearest level, clipped outside [-1, 1].
    h = 2.0 / (levels - 1)
    assert (images.to_levels(x + 0.49 * h, levels) == v).all()
    assert images.to_levels(np.array([-3.0, 3.0]), levels).tolist() == [0, levels - 1]


# ---------------------------------------------------------------- digits


def test_digits_fixed_stratified_split_with_17_levels():
    ds = get_dataset("digits")
    assert ds.shape == (1, 8, 8) and ds.dim == 64 and ds.levels == 17 and ds.fixed_splits
    train, test = ds.load_split("train"), ds.load_split("test")
    assert train.shape == (1497, 1, 8, 8) and test.shape == (300, 1, 8, 8)
    assert train.dtype == np.float32 and train.min() == -1.0 and train.max() == 1.0
    # Exactly the 17 values 2 v / 16 - 1.
    levels = (2.0 * np.arange(17) / 16 - 1).astype(np.float32)
    np.testing.assert_array_equal(np.unique(test), levels)
    assert np.bincount(ds.load_labels("test")).tolist() == [30] * 10
    # The two splits are disjoint and together are all of scikit-learn's digits.
    from sklearn.datasets import load_digits

    every = np.rint(load_digits().images).reshape(1797, 64)
    both = np.concatenate([train, test]).reshape(1797, 64)
    both_levels = np.rint((both + 1) * 8)
    key = lambda a: sorted(map(bytes, a.astype(np.uint8)))  # noqa: E731
    assert key(both_levels) == key(every)


def test_fixed_split_sample_gives_whole_split_or_a_seeded_subset():
    ds = get_dataset("digits")
    np.testing.assert_array_equal(ds.sample(20000, seed=3, split="test"), ds.load_split("test"))
    a, b = ds.sample(50, seed=1), ds.sample(50, seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 1, 8, 8) and not np.array_equal(a, ds.sample(50, seed=2))
    full = {row.tobytes() for row in ds.load_split("train").reshape(1497, -1)}
    assert all(row.tobytes() in full for row in a.reshape(50, -1))


def test_vector_datasets_keep_dim_and_have_no_levels():
    for name in ("8gaussians", "moons"):
        ds = DATASETS[name]
        assert ds.shape == (2,) and ds.dim == 2 and ds.levels is None and not ds.fixed_splits
        assert ds.sample(5, 0).shape == (5, 2)
    with pytest.raises(ValueError, match="no fixed splits"):
        DATASETS["moons"].load_split("test")


# ---------------------------------------------------------------- IDX


def idx_bytes(arr: np.ndarray) -> bytes:
    """An IDX file for a uint8 array: magic 0, 0, 0x08, ndim; big-endian sizes; data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in arr.shape
    )
    return header + arr.astype(np.uint8).tobytes()


def write_fashion(root, n_train=5, n_test=3, gz=True):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        for kind, arr in (("images-idx3", imgs), ("labels-idx1", labels)):
            data = idx_bytes(arr)
            name = f"{split}-{kind}-ubyte"
            if gz:
                (root / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (root / name).write_bytes(data)
        arrays[split] = (imgs, labels)
    return arrays


def test_idx_reader_plain_and_gzipped(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)


def test_idx_reader_names_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataFileError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    arr = np.zeros((4, 5), dtype=np.uint8)
    (tmp_path / "short").write_bytes(idx_bytes(arr)[:-3])
    with pytest.raises(DataFileError, match=r"short.*shape \[4, 5\]"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_a_data_dir(tmp_path, gz):
    arrays = write_fashion(tmp_path / "fm", gz=gz)
    ds = get_dataset("fashion_mnist", data_dir=str(tmp_path / "fm"))
    assert ds.shape == (1, 28, 28) and ds.levels == 256
    test = ds.load_split("test")
    assert test.shape == (3, 1, 28, 28) and test.dtype == np.float32
    np.testing.assert_allclose(test[:, 0], 2.0 * arrays["t10k"][0] / 255 - 1, atol=1e-6)
    np.testing.assert_array_equal(ds.load_labels("train"), arrays["train"][1])


def test_fashion_mnist_from_the_environment_subdirectory(tmp_path, monkeypatch):
    write_fashion(tmp_path / "fashion_mnist")
    monkeypatch.setenv(images.DATA_DIR_ENV, str(tmp_path))
    assert get_dataset("fashion_mnist").sample(2, seed=0, split="train").shape == (2, 1, 28, 28)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.setenv(images.DATA_DIR_ENV, str(tmp_path / "empty"))
    with pytest.raises(DataFileError) as err:
        get_dataset("fashion_mnist").load_split("train")
    msg = str(err.value)
    for fragment in ("train-images-idx3-ubyte.gz", str(tmp_path / "empty"), "no-debian",
                     "apt-get install dataset-fashion-mnist", "zalandoresearch/fashion-mnist",
                     "SFBENCH_DATA_DIR"):
        assert fragment in msg, fragment


# ---------------------------------------------------------------- CIFAR-10


def write_cifar_batch(path, n, seed):
    """A batch in CIFAR-10's format: a pickled dict with bytes keys, uint8 [n, 3072] rows."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"test", b"labels": labels, b"data": data,
                     b"filenames": [b"x.png"] * n}, f, protocol=2)
    return data, labels


def test_cifar_reader_on_a_tiny_batch(tmp_path):
    data, labels = write_cifar_batch(tmp_path / "b", 4, 0)
    imgs, labs = read_cifar_batch(tmp_path / "b")
    assert imgs.shape == (4, 3, 32, 32) and imgs.dtype == np.uint8
    # Row layout: 1024 red values, then green, then blue, each row-major 32 x 32.
    np.testing.assert_array_equal(imgs[2, 1, 3, 5], data[2, 1024 + 3 * 32 + 5])
    assert labs.tolist() == labels


def test_cifar_dataset_from_the_batches_directory(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for i in range(1, 6):
        write_cifar_batch(root / f"data_batch_{i}", 2, i)
    test_data, _ = write_cifar_batch(root / "test_batch", 3, 9)
    ds = get_dataset("cifar10", data_dir=str(tmp_path))
    assert ds.load_split("train").shape == (10, 3, 32, 32)
    test = ds.load_split("test")
    np.testing.assert_allclose(test.reshape(3, -1), 2.0 * test_data / 255 - 1, atol=1e-6)


def test_cifar_reader_refuses_foreign_pickles(tmp_path):
    with open(tmp_path / "evil", "wb") as f:
        pickle.dump({b"data": np.zeros(3), b"labels": [], b"x": DataFileError("x")}, f)
    with pytest.raises(DataFileError, match="not a CIFAR-10 python batch"):
        read_cifar_batch(tmp_path / "evil")
    with open(tmp_path / "shape", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 10), dtype=np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DataFileError, match=r"expected uint8 \[N, 3072\]"):
        read_cifar_batch(tmp_path / "shape")


def test_missing_cifar_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(images.DATA_DIR_ENV, raising=False)
    with pytest.raises(DataFileError) as err:
        get_dataset("cifar10", data_dir=str(tmp_path)).load_split("test")
    msg = str(err.value)
    for fragment in ("data_batch_1", "test_batch", str(tmp_path), "cifar-10-python.tar.gz"):
        assert fragment in msg, fragment
