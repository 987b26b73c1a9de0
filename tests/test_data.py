"""Tests of vae_lib.data and vae_lib.idx: the bundled splits, the IDX reader and the download path, all offline."""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import struct
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_lib import atomic, data, idx
from vae_lib.data import DATASETS, DatasetDownloadError, DatasetFileError, load_dataset

# --- a tiny fake IDX data set, written by the tests --------------------------------------

N_FAKE = 12


def idx_bytes(magic: int, array: np.ndarray, shape: tuple[int, ...] | None = None) -> bytes:
    """Gzip IDX file: big-endian magic, one int32 per dimension (``shape`` overrides), uint8 data."""
    shape = array.shape if shape is None else shape
    header = struct.pack(f">{1 + len(shape)}i", magic, *shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def fake_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """12 random 28x28 uint8 images and labels 0..9, 0, 1."""
    images = np.random.default_rng(seed).integers(0, 256, size=(N_FAKE, 28, 28), dtype=np.uint8)
    return images, np.arange(N_FAKE, dtype=np.uint8) % 10


def fake_files(prefix: str, seed: int = 0) -> dict[str, bytes]:
    """File name -> gzip IDX bytes for one split ("train" or "t10k")."""
    images, labels = fake_split(seed)
    return {
        f"{prefix}-images-idx3-ubyte.gz": idx_bytes(2051, images),
        f"{prefix}-labels-idx1-ubyte.gz": idx_bytes(2049, labels),
    }


def write(folder: Path, files: dict[str, bytes]) -> None:
    for filename, content in files.items():
        (folder / filename).write_bytes(content)


def rows(x: torch.Tensor) -> set[bytes]:
    """Each image as bytes, to compare sets of images."""
    return {r.tobytes() for r in x.reshape(len(x), -1).numpy()}


# --- bundled sets: mnist-5k and digits ---------------------------------------------------


@pytest.mark.parametrize(("name", "size", "n_all"), [("mnist-5k", 28, 5000), ("digits", 8, 1797)])
def test_bundled_split_is_stratified_disjoint_and_complete(name: str, size: int, n_all: int) -> None:
    x_tr, y_tr = load_dataset(name, "train")
    x_va, y_va = load_dataset(name, "val")
    for x, y in ((x_tr, y_tr), (x_va, y_va)):
        assert x.shape == (len(y), 1, size, size) and x.dtype == torch.float32
        assert y.dtype == torch.int64 and y.shape == (len(x),)
        assert 0.0 <= x.min() and x.max() <= 1.0
    assert len(x_tr) + len(x_va) == n_all
    # every class: round(10 %) of it in val, the rest in train
    n_class = torch.bincount(torch.cat([y_tr, y_va]), minlength=10)
    expected_val = torch.tensor([round(0.1 * int(n)) for n in n_class])
    assert torch.equal(torch.bincount(y_va, minlength=10), expected_val)
    assert torch.equal(torch.bincount(y_tr, minlength=10), n_class - expected_val)
    # disjoint, and together they are the whole set
    x_all, _ = data._bundled(name)
    assert not rows(x_tr) & rows(x_va)
    assert rows(x_tr) | rows(x_va) == rows(x_all)
    # the first rows are not all one class (the source is sorted by class)
    assert len(torch.unique(y_tr[:50])) > 5


def test_mnist5k_counts_and_pixel_scale() -> None:
    x_tr, y_tr = load_dataset()  # defaults: mnist-5k, train
    x_va, y_va = load_dataset("mnist-5k", "val")
    assert x_tr.shape == (4500, 1, 28, 28) and x_va.shape == (500, 1, 28, 28)
    assert torch.all(torch.bincount(y_tr) == 450) and torch.all(torch.bincount(y_va) == 50)
    assert x_tr.max() == 1.0  # pixel / 255, not / 256
    assert torch.equal(x_tr * 255, (x_tr * 255).round())


@pytest.mark.parametrize("name", ["mnist-5k", "digits"])
def test_bundled_split_is_deterministic_and_leaves_global_rng_alone(name: str) -> None:
    first = load_dataset(name, "val")
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state()
    data._stratified_split.cache_clear()  # recompute the split from scratch
    again = load_dataset(name, "val")
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_returned_tensors_may_be_mutated() -> None:
    x, y = load_dataset("digits", "train")
    x.zero_()
    y.fill_(-1)
    x2, y2 = load_dataset("digits", "train")
    assert x2.max() > 0 and y2.min() >= 0


# --- IDX sets: reading ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize(("split", "prefix"), [("train", "train"), ("test", "t10k")])
def test_idx_round_trip_needs_only_that_splits_files(
    tmp_path: Path, name: str, split: str, prefix: str
) -> None:
    write(tmp_path, fake_files(prefix))  # only this split's two files
    x, y = load_dataset(name, split, root=tmp_path)
    images, labels = fake_split()
    assert x.shape == (N_FAKE, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64
    torch.testing.assert_close(x, torch.from_numpy(images).float().unsqueeze(1) / 255)
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))


def _truncated_gzip() -> bytes:
    whole = fake_files("train")["train-images-idx3-ubyte.gz"]
    return whole[: len(whole) // 2]


_IMAGES, _LABELS = fake_split()
BAD_FILES = {  # case -> (file that is bad, its content, words expected in the message)
    "not gzip": ("train-images-idx3-ubyte.gz", b"this is not gzip", "gzip"),
    "truncated gzip": ("train-images-idx3-ubyte.gz", _truncated_gzip(), "gzip"),
    "wrong magic": ("train-images-idx3-ubyte.gz", idx_bytes(2049, _IMAGES), "magic"),
    "short header": ("train-labels-idx1-ubyte.gz", gzip.compress(b"\x00\x00"), "header"),
    "truncated data": (
        "train-images-idx3-ubyte.gz", idx_bytes(2051, _IMAGES[:-1], (N_FAKE, 28, 28)), "truncated"
    ),
    "count mismatch": ("train-labels-idx1-ubyte.gz", idx_bytes(2049, _LABELS[:-1]), "labels"),
    "label out of range": ("train-labels-idx1-ubyte.gz", idx_bytes(2049, _LABELS + 1), "outside 0..9"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_idx_file_gives_a_clear_error_naming_it(tmp_path: Path, case: str) -> None:
    filename, content, words = BAD_FILES[case]
    write(tmp_path, fake_files("train"))
    (tmp_path / filename).write_bytes(content)
    with pytest.raises(DatasetFileError, match=words) as info:
        load_dataset("mnist", "train", root=tmp_path)
    assert filename in str(info.value)
    assert isinstance(info.value, ValueError)


# --- IDX sets: missing files and downloads -------------------------------------------------


def test_missing_files_without_download(tmp_path: Path) -> None:
    write(tmp_path, {"train-images-idx3-ubyte.gz": fake_files("train")["train-images-idx3-ubyte.gz"]})
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist", "train", root=tmp_path)
    message = str(info.value)
    for words in ("train-labels-idx1-ubyte.gz", str(tmp_path), "download=True", "mnist-5k"):
        assert words in message
    assert "train-images" not in message  # only what is missing is named


def test_default_root_follows_vae_lib_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAE_LIB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        load_dataset("fashion-mnist", "test")
    assert str(tmp_path / "fashion-mnist") in str(info.value)
    (tmp_path / "fashion-mnist").mkdir()
    write(tmp_path / "fashion-mnist", fake_files("t10k"))
    assert load_dataset("fashion-mnist", "test")[0].shape == (N_FAKE, 1, 28, 28)


def fake_fetch(files: dict[str, bytes], calls: list[str], fail_first_mirror: bool = False):
    """A stand-in for idx.fetch that serves ``files`` by name, recording each URL asked for."""

    def fetch(url: str, dest: Path, progress: bool) -> None:
        calls.append(url)
        if fail_first_mirror and len(calls) % 2 == 1:
            raise urllib.error.URLError("simulated: no route to host")
        dest.write_bytes(files[url.rsplit("/", 1)[-1]])

    return fetch


def test_failed_download_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, dest: Path, progress: bool) -> None:
        dest.write_bytes(b"partial")  # a half-written file must not survive
        raise urllib.error.URLError("simulated: offline")

    monkeypatch.setattr(idx, "fetch", offline)
    with pytest.raises(DatasetDownloadError) as info:
        load_dataset("mnist", "test", root=tmp_path, download=True)
    assert isinstance(info.value, ConnectionError)
    message = str(info.value)
    assert "mnist-5k" in message and "offline" in message and str(tmp_path) in message
    for mirror in idx.MIRRORS["mnist"]:  # every mirror was tried
        assert mirror in message
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_keeps_good_files_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = fake_files("train")
    write(tmp_path, {"train-images-idx3-ubyte.gz": good["train-images-idx3-ubyte.gz"]})
    calls: list[str] = []
    monkeypatch.setattr(idx, "fetch", fake_fetch(good, calls))  # real SHA256: fake bytes cannot match
    with pytest.raises(DatasetDownloadError, match="SHA-256"):
        load_dataset("mnist", "train", root=tmp_path, download=True)
    # the file already there is not fetched again
    assert calls and all(url.endswith("train-labels-idx1-ubyte.gz") for url in calls)
    assert [p.name for p in tmp_path.iterdir()] == ["train-images-idx3-ubyte.gz"]
    assert (tmp_path / "train-images-idx3-ubyte.gz").read_bytes() == good["train-images-idx3-ubyte.gz"]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_successful_download_falls_back_to_next_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    files = fake_files("t10k", seed=3)
    monkeypatch.setitem(idx.SHA256, name, {f: hashlib.sha256(b).hexdigest() for f, b in files.items()})
    calls: list[str] = []
    monkeypatch.setattr(idx, "fetch", fake_fetch(files, calls, fail_first_mirror=True))
    root = tmp_path / "new" / "folder"  # created on demand
    x, y = load_dataset(name, "test", root=root, download=True, progress=False)
    assert x.shape == (N_FAKE, 1, 28, 28)
    assert torch.equal(y, torch.from_numpy(fake_split(3)[1].astype(np.int64)))
    assert sorted(p.name for p in root.iterdir()) == sorted(files)  # no temp files left
    assert [url.rsplit("/", 1)[0] + "/" for url in calls[:2]] == list(idx.MIRRORS[name])
    # second load: files are there, nothing fetched
    load_dataset(name, "test", root=root, download=True)
    assert len(calls) == 4


def test_fetch_streams_a_url_to_a_file(tmp_path: Path) -> None:
    source = tmp_path / "source.gz"
    source.write_bytes(bytes(range(256)) * 1000)
    dest = tmp_path / "dest.part"
    idx.fetch(source.as_uri(), dest, progress=False)  # file:// needs no network
    assert dest.read_bytes() == source.read_bytes()
    assert idx.sha256(dest) == hashlib.sha256(source.read_bytes()).hexdigest()


def test_errors_are_one_class_wherever_imported() -> None:
    import vae_lib

    assert data.DatasetFileError is idx.DatasetFileError is vae_lib.DatasetFileError
    assert data.DatasetDownloadError is idx.DatasetDownloadError is vae_lib.DatasetDownloadError
    assert {"DatasetFileError", "DatasetDownloadError"} <= set(data.__all__) & set(idx.__all__)
    assert all(hasattr(idx, name) for name in idx.__all__)


def test_checksum_table_is_complete() -> None:
    for name, mirrors in idx.MIRRORS.items():
        assert name in DATASETS and mirrors
        table = idx.SHA256[name]
        kinds = ("images-idx3", "labels-idx1")
        assert sorted(table) == sorted(f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in kinds)
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())


# --- bad arguments ------------------------------------------------------------------------


def test_unknown_name_lists_every_dataset() -> None:
    with pytest.raises(ValueError, match="cifar") as info:
        load_dataset("cifar")
    for name in DATASETS:
        assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("name", "split", "valid"), [("mnist", "val", ("train", "test")), ("mnist-5k", "test", ("train", "val"))]
)
def test_unknown_split_lists_valid_splits(name: str, split: str, valid: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match=repr(split)) as info:
        load_dataset(name, split, root="/nonexistent")
    assert all(repr(s) in str(info.value) for s in valid)


# --- validation held out of the training set ------------------------------------------------


def test_held_out_split_names_the_scoring_split() -> None:
    assert [data.held_out_split(n) for n in DATASETS] == ["val", "val", "test", "test"]
    with pytest.raises(ValueError, match="cifar"):
        data.held_out_split("cifar")


def test_train_val_split_of_a_bundled_set_is_its_fixed_split() -> None:
    (x_tr, y_tr), (x_va, y_va) = data.train_val_split("digits")
    for got, want in zip((x_tr, y_tr, x_va, y_va), (*load_dataset("digits", "train"), *load_dataset("digits", "val"))):
        assert torch.equal(got, want)


def big_fake_train(folder: Path, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Write an IDX 'train' split with ``counts[c]`` images of class c (no test files); return it."""
    labels = np.repeat(np.arange(len(counts)), counts).astype(np.uint8)
    labels = np.random.default_rng(1).permutation(labels)
    images = np.random.default_rng(2).integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
    write(folder, {"train-images-idx3-ubyte.gz": idx_bytes(2051, images),
                   "train-labels-idx1-ubyte.gz": idx_bytes(2049, labels)})
    return images, labels


def test_train_val_split_of_an_idx_set_holds_out_400_training_images(tmp_path: Path) -> None:
    counts = [59, 61, 60, 57, 63, 60, 60, 58, 62, 60]  # 600 images; 400 · n_c / 600 has remainders
    images, labels = big_fake_train(tmp_path, counts)  # no t10k files: the test split is never read
    (x_tr, y_tr), (x_va, y_va) = data.train_val_split("mnist", root=tmp_path)
    assert data.IDX_VAL_SIZE == 400 and len(x_va) == 400 and len(x_tr) == 200
    # stratified: each class gets its proportional share, off by less than one image (Hamilton)
    quota = 400 * np.array(counts) / 600
    got = np.bincount(y_va.numpy(), minlength=10)
    assert got.sum() == 400 and np.all(np.abs(got - quota) < 1)
    assert np.array_equal(got + np.bincount(y_tr.numpy(), minlength=10), counts)
    # disjoint and complete, and pixels are the file's
    all_x = torch.from_numpy(images).float().unsqueeze(1) / 255
    assert not rows(x_tr) & rows(x_va) and rows(x_tr) | rows(x_va) == rows(all_x)
    # fixed: the same split every time
    (x_tr2, _), (x_va2, _) = data.train_val_split("mnist", root=tmp_path)
    assert torch.equal(x_va, x_va2) and torch.equal(x_tr, x_tr2)


def test_largest_remainder_against_hand_worked_cases() -> None:
    # 10 · [1, 1, 1] / 3 = 3.33 each: floors 3, 3, 3, one unit left to the first (ties: lower class)
    assert data.largest_remainder(np.array([1, 1, 1]), 10).tolist() == [4, 3, 3]
    # 5 · [7, 2, 1] / 10 = 3.5, 1.0, 0.5: floors 3, 1, 0; the one unit left goes to the tie .5/.5's lower class
    assert data.largest_remainder(np.array([7, 2, 1]), 5).tolist() == [4, 1, 0]
    assert data.largest_remainder(np.array([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]),
                                   400).sum() == 400  # the real MNIST training class counts


def test_train_val_split_needs_more_than_400_images(tmp_path: Path) -> None:
    write(tmp_path, fake_files("train"))  # 12 images
    with pytest.raises(DatasetFileError, match="at least 401"):
        data.train_val_split("fashion-mnist", root=tmp_path)


# --- downloads are written with vae_lib.atomic ----------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_download_gets_open_permissions_and_removes_a_killed_downloads_litter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = fake_files("t10k", seed=4)
    monkeypatch.setitem(idx.SHA256, "mnist", {f: hashlib.sha256(b).hexdigest() for f, b in files.items()})
    monkeypatch.setattr(idx, "fetch", fake_fetch(files, []))
    litter = tmp_path / f".t10k-images-idx3-ubyte.gz.{atomic._HOST}-{_dead_pid()}-0123abcd.tmp"
    litter.write_bytes(b"half a download")  # what a download killed by SIGKILL leaves
    old = os.umask(0o002)
    try:
        load_dataset("mnist", "test", root=tmp_path, download=True, progress=False)
    finally:
        os.umask(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    assert all(stat.S_IMODE((tmp_path / f).stat().st_mode) == 0o664 for f in files)
