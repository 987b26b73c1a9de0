"""The official IDX files of ``"mnist"`` and ``"fashion-mnist"``: where they come from, how to check and read them.

This module owns everything about those files, and :mod:`vae_lib.data` builds its splits on it:

* where they live: :data:`MIRRORS` (tried in order) and :func:`default_root`
  (``$VAE_LIB_DATA/<name>``, else ``~/.cache/vae_lib/<name>``);
* what they must be: :data:`SHA256` (the known digest of every gzip file) and
  :data:`IDX_MAGIC` (the IDX magic numbers of image and label files);
* getting them: :func:`fetch` (the only function that touches the network, with a
  ``tqdm.auto`` progress bar), :func:`sha256` and :func:`download_file`, which writes through
  :func:`vae_lib.atomic.atomic_write` and keeps only a file whose SHA-256 matches, falling
  back to the next mirror otherwise;
* reading them: :func:`read_idx` (one file, validated) and :func:`load_idx_split` (images
  and labels of one split as tensors);
* what goes wrong: :class:`DatasetFileError` (a corrupt or wrong file) and
  :class:`DatasetDownloadError` (no mirror served a good file), both re-exported by
  :mod:`vae_lib.data` and by the package itself (``vae_lib.DatasetFileError``).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .atomic import atomic_write

__all__ = ["MIRRORS", "SHA256", "IDX_MAGIC", "DatasetFileError", "DatasetDownloadError", "default_root",
           "load_idx_split", "read_idx", "fetch", "sha256", "download_file"]

#: Data set name -> base URLs, tried in order; every file must match its :data:`SHA256`
#: digest whichever mirror served it.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}
#: Data set name -> file name -> hex SHA-256 of the official gzip file, as hard-coded in
#: torchvision's dataset code (torchvision/prototype/datasets/_builtin/mnist.py) and in many
#: independent projects.
#:
#: :meta hide-value:
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
#: The number of dimensions for each IDX magic number, 3 for images (2051; n, rows, cols)
#: and 1 for labels (2049; n).
IDX_MAGIC: dict[int, int] = {2051: 3, 2049: 1}
_BUNDLED_HINT = "The bundled 'mnist-5k' (5,000 MNIST digits, no download) works offline."


class DatasetFileError(ValueError):
    """A data file is corrupt, truncated or not the IDX file it should be."""


class DatasetDownloadError(ConnectionError):
    """A file could not be fetched from any mirror, or what came did not match its SHA-256."""


class _ChecksumMismatch(Exception):
    """One mirror served a file whose SHA-256 is wrong (the next mirror is tried)."""


def default_root(name: str) -> Path:
    """``$VAE_LIB_DATA/<name>``, else ``$XDG_CACHE_HOME/vae_lib/<name>`` (``~/.cache`` by default)."""
    if os.environ.get("VAE_LIB_DATA"):
        return Path(os.environ["VAE_LIB_DATA"]).expanduser() / name
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vae_lib" / name


def load_idx_split(
    name: str, split: str, folder: Path, download: bool, progress: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read (downloading first if asked) one split of an IDX set from ``folder``.

    Args:
        name: a key of :data:`MIRRORS` (``"mnist"`` or ``"fashion-mnist"``).
        split: ``"train"`` (the 60,000 ``train-*`` files) or ``"test"`` (the 10,000 ``t10k-*``).
        folder: where the gzip IDX files are, or are put.
        download: fetch missing files (see :func:`download_file`); else a missing file is an error.
        progress: show a progress bar while downloading.

    Returns:
        ``x``: [N, 1, rows, cols] float32 in [0, 1] and ``y``: [N] int64 in 0..9.

    Raises:
        FileNotFoundError: files missing and ``download=False``.
        DatasetDownloadError: a download failed or its checksum did not match.
        DatasetFileError: a file is corrupt, truncated, of the wrong kind, or the two disagree.
    """
    prefix = "train" if split == "train" else "t10k"
    image_file, label_file = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    missing = [f for f in (image_file, label_file) if not (folder / f).is_file()]
    if missing and not download:
        raise FileNotFoundError(
            f"{name!r} split {split!r}: {' and '.join(missing)} not found in {folder}. "
            f"Pass download=True to fetch them (needs internet), or put the official gzip IDX "
            f"files in that folder (or pass root=). {_BUNDLED_HINT}"
        )
    for filename in missing:
        download_file(name, filename, folder, progress)

    images = read_idx(folder / image_file, magic=2051)  # [N, rows, cols] uint8
    labels = read_idx(folder / label_file, magic=2049)  # [N] uint8
    if len(images) != len(labels):
        raise DatasetFileError(
            f"{folder / image_file} holds {len(images)} images but {folder / label_file} "
            f"holds {len(labels)} labels; the two files do not belong together."
        )
    if labels.size and labels.max() > 9:
        raise DatasetFileError(f"{folder / label_file}: label {labels.max()} is outside 0..9.")
    x = torch.from_numpy(np.divide(images, 255, dtype=np.float32)).unsqueeze(1)  # [N, 1, rows, cols]
    return x, torch.from_numpy(labels.astype(np.int64))


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one gzip IDX file of unsigned bytes, checking it on the way.

    Layout: big-endian int32 magic (2051 images, 2049 labels; see :data:`IDX_MAGIC`), then
    one int32 per dimension, then the uint8 data in C order. Returns [n, rows, cols] or [n] uint8.

    Raises:
        DatasetFileError: not gzip, truncated, wrong magic number, or data not matching the header.
    """
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated stream, bad CRC
        raise DatasetFileError(f"{path}: not a readable gzip file ({exc}).") from exc
    ndim = IDX_MAGIC[magic]
    header_bytes = 4 * (1 + ndim)
    if len(raw) < header_bytes:
        raise DatasetFileError(f"{path}: {len(raw)} bytes is too short for an IDX header.")
    header = np.frombuffer(raw, dtype=">i4", count=1 + ndim)  # [magic, n, (rows, cols)]
    if header[0] != magic:
        kind = "image" if magic == 2051 else "label"
        raise DatasetFileError(f"{path}: magic number {header[0]}, expected {magic} (an IDX {kind} file).")
    shape = tuple(int(d) for d in header[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_bytes)
    if min(shape) < 0 or data.size != math.prod(shape):
        raise DatasetFileError(
            f"{path}: header promises {'x'.join(map(str, shape))} = {math.prod(shape)} bytes "
            f"of data but the file holds {data.size} (truncated or corrupt)."
        )
    return data.reshape(shape)


# --- downloading ---------------------------------------------------------------------------


def fetch(url: str, dest: Path, progress: bool) -> None:
    """Stream ``url`` into the file ``dest`` (overwriting it), with a tqdm progress bar in bytes.

    The only function that touches the network: tests replace it (``idx.fetch``).
    """
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "vae_lib"})
    with urllib.request.urlopen(request, timeout=30) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        desc = url.rsplit("/", 1)[-1]
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (64 characters), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(name: str, filename: str, folder: Path, progress: bool) -> None:
    """Put a verified ``folder/filename`` in place, trying each mirror of :data:`MIRRORS` in turn.

    Each attempt is written with :func:`vae_lib.atomic.atomic_write`, and only a file whose
    SHA-256 matches :data:`SHA256` is moved into place, so a failed or corrupt download never
    leaves a partial file nor replaces a good one (and one killed outright is cleaned up next time).

    Raises:
        DatasetDownloadError: no mirror served the file with the right SHA-256; the message
            lists what went wrong at each mirror.
    """
    expected = SHA256[name][filename]
    failures = []

    def fetch_verified(url: str) -> Callable[[Path], None]:
        def write(tmp: Path) -> None:
            fetch(url, tmp, progress)
            actual = sha256(tmp)
            if actual != expected:
                raise _ChecksumMismatch(f"{url}: SHA-256 {actual} does not match the expected {expected}")
        return write

    for mirror in MIRRORS[name]:
        url = mirror + filename
        try:
            atomic_write(folder / filename, fetch_verified(url))
            return
        except _ChecksumMismatch as exc:
            failures.append(str(exc))
        except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError, timeouts, ...
            failures.append(f"{url}: {exc}")
    raise DatasetDownloadError(
        f"Could not download {filename} for {name!r} into {folder}:\n  " + "\n  ".join(failures)
        + "\nCheck the internet connection, or put the official file in that folder yourself. "
        + _BUNDLED_HINT
    )
