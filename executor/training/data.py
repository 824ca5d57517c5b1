"""Training data: where samples come from, how they are batched, and how they meet the network.

A :class:`Dataset` holds numpy arrays: per network input name, the training samples (first
axis: samples) and the test samples, the label input being one of them. Three sources:

* :func:`synthetic`: a learnable class-conditional generator shaped from the network's inputs:
  every class has a random centre per float input; a sample is its class's centres plus
  Gaussian noise (scale ``noise``), so a network can learn it and its accuracy means something;
* :func:`digits`: the real 8x8 handwritten digits that scikit-learn ships (``load_digits``,
  1,797 images, 64 features scaled to [0, 1]), split train/test with a fixed seed (the optional
  extra ``pip install 'sublinear[data]'``);
* :func:`from_npz`: a user's ``FILE.npz`` with ``data`` and ``label`` arrays (and optionally
  ``test_data`` / ``test_label``; without them a fixed 10% of the samples is held out).

Batches (:meth:`Dataset.batches`): the training samples are shuffled with the seed each epoch
and cut into batches of the bound batch size; the last partial batch is **dropped** (every
sample is still seen across epochs, as the shuffle changes). Evaluation batches
(:meth:`Dataset.eval_batches`) cover every test sample: the last one is padded with the first
samples and the padded rows are ignored.

All user mistakes are :class:`DataError` (a :class:`~symbol.errors.SymbolError`): a missing or
corrupt file, wrong array names, a sample shape the network does not take (naming both shapes).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import numpy as np

from symbol.errors import SymbolError

__all__ = ["DataError", "Dataset", "synthetic", "digits", "from_npz", "check_against",
           "SOURCES"]

#: The names ``--data`` takes besides a ``.npz`` file.
SOURCES = ("synthetic", "digits")


class DataError(SymbolError):
    """Training data that cannot be used: missing, malformed, or not what the network takes."""


@dataclass
class Dataset:
    """Arrays by network input name (samples on the first axis), train and test.

    Attributes:
        train, test: input name -> array; every array of one split has the same length.
        label: the name of the label input (class indices, any numeric dtype).
        classes: number of classes.
        name: where the data came from (for reports).
    """

    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    label: str
    classes: int
    name: str

    def __post_init__(self) -> None:
        for split, arrays in (("train", self.train), ("test", self.test)):
            lengths = {k: len(v) for k, v in arrays.items()}
            if len(set(lengths.values())) > 1:
                raise DataError(f"{self.name}: the {split} arrays differ in length: "
                                + ", ".join(f"{k} {n}" for k, n in lengths.items()))

    @property
    def num_train(self) -> int:
        return len(self.train[self.label])

    @property
    def num_test(self) -> int:
        return len(self.test[self.label]) if self.test else 0

    def sample_shapes(self) -> dict[str, tuple[int, ...]]:
        """Input name -> the shape of one sample."""
        return {k: tuple(v.shape[1:]) for k, v in self.train.items()}

    def batches(self, batch: int, rng: np.random.Generator) -> Iterator[dict[str, np.ndarray]]:
        """One epoch of shuffled training batches (the last partial batch dropped)."""
        order = rng.permutation(self.num_train)
        for start in range(0, self.num_train - batch + 1, batch):
            idx = order[start:start + batch]
            yield {k: v[idx] for k, v in self.train.items()}

    def eval_batches(self, batch: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """(batch, number of real rows) covering every test sample; the last batch is padded."""
        n = self.num_test
        for start in range(0, n, batch):
            idx = np.arange(start, start + batch) % n
            yield {k: v[idx] for k, v in self.test.items()}, min(batch, n - start)

    def check_labels(self) -> None:
        """Labels must be whole numbers in [0, classes)."""
        for split, arrays in (("train", self.train), ("test", self.test)):
            if not arrays:
                continue
            lab = np.asarray(arrays[self.label], dtype=np.float64)
            bad = (lab < 0) | (lab >= self.classes) | (lab != np.floor(lab)) | ~np.isfinite(lab)
            if bad.any():
                i = int(np.flatnonzero(bad.reshape(-1))[0])
                raise DataError(f"{self.name}: {split} label {float(lab.reshape(-1)[i]):g} "
                                f"(sample {i}) is not a class index 0 .. {self.classes - 1}")


def synthetic(inputs: Mapping[str, tuple[int, ...]], label: str, classes: int, *,
              samples: int = 4096, test_samples: int = 1024, noise: float = 1.0,
              seed: int = 0) -> Dataset:
    """Class-conditional Gaussian samples for every float input of the network.

    Args:
        inputs: input name -> sample shape (without the batch axis), the label excluded.
        label: the label input's name. classes: number of classes.
        samples, test_samples: sizes of the two splits. noise: standard deviation around each
            class's centre (centres are standard normal). seed: everything is drawn from it.
    """
    if classes < 2:
        raise DataError(f"synthetic data needs at least 2 classes, the network has {classes}")
    rng = np.random.default_rng(seed)
    centres = {k: rng.normal(0.0, 1.0, (classes, *shape)).astype(np.float32)
               for k, shape in inputs.items()}

    def split(n: int) -> dict[str, np.ndarray]:
        y = rng.integers(0, classes, n)
        out = {k: (c[y] + noise * rng.normal(0.0, 1.0, (n, *c.shape[1:]))).astype(np.float32)
               for k, c in centres.items()}
        out[label] = y.astype(np.float32)
        return out
    return Dataset(split(samples), split(test_samples), label, classes, "synthetic")


def digits(data: str, label: str, *, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 digits (features / 16), split with ``seed``.

    Raises:
        DataError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("--data digits needs scikit-learn: pip install 'sublinear[data]' "
                        "(or pip install scikit-learn)") from None
    x, y = load_digits(return_X_y=True)
    return _split({data: (x / 16.0).astype(np.float32), label: y.astype(np.float32)}, label,
                  10, "digits", seed, test_fraction)


def from_npz(path: str, data: str, label: str, *, seed: int = 0,
             test_fraction: float = 0.1) -> Dataset:
    """A user's ``.npz``: ``data`` and ``label`` (and optionally ``test_data``/``test_label``).

    Raises:
        DataError: a missing, unreadable or corrupt file, or missing arrays (names listed).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: "
                        f"{str(e)[:120]})") from None
    missing = [k for k in ("data", "label") if k not in arrays]
    if missing:
        raise DataError(f"{path}: no array named {' or '.join(repr(k) for k in missing)} "
                        f"(found: {', '.join(sorted(arrays)) or 'none'}; expected data and "
                        "label, optionally test_data and test_label)")
    for k, v in arrays.items():
        if v.dtype.kind not in "biuf":
            raise DataError(f"{path}: array {k!r} holds {v.dtype}, not numbers")
    x, y = arrays["data"], arrays["label"]
    if len(x) != len(y):
        raise DataError(f"{path}: data has {len(x)} samples, label {len(y)}")
    classes = int(np.max(y)) + 1 if len(y) else 0
    if "test_data" in arrays or "test_label" in arrays:
        if "test_data" not in arrays or "test_label" not in arrays:
            raise DataError(f"{path}: test_data and test_label go together")
        test = {data: arrays["test_data"].astype(np.float32),
                label: arrays["test_label"].astype(np.float32)}
        classes = max(classes, int(np.max(test[label])) + 1 if len(test[label]) else 0)
        return Dataset({data: x.astype(np.float32), label: y.astype(np.float32)}, test,
                       label, classes, path)
    return _split({data: x.astype(np.float32), label: y.astype(np.float32)}, label, classes,
                  path, seed, test_fraction)


def _split(arrays: dict[str, np.ndarray], label: str, classes: int, name: str, seed: int,
           test_fraction: float) -> Dataset:
    n = len(arrays[label])
    order = np.random.default_rng(seed).permutation(n)
    cut = n - int(round(n * test_fraction))
    return Dataset({k: v[order[:cut]] for k, v in arrays.items()},
                   {k: v[order[cut:]] for k, v in arrays.items()}, label, classes, name)


def check_against(dataset: Dataset, declared: Mapping[str, Sequence[int] | None]) -> None:
    """Every input the network declares a shape for takes the data's samples (batch axis
    aside): else one error naming both shapes."""
    samples = dataset.sample_shapes()
    for name, shape in declared.items():
        if shape is None or name not in samples or name == dataset.label:
            continue
        if tuple(shape[1:]) != samples[name]:
            raise DataError(f"the network's input {name!r} is {tuple(shape)} (samples of "
                            f"{tuple(shape[1:])}), but the {dataset.name} samples are "
                            f"{samples[name]}: change the network's parameters (e.g. "
                            "--param) or the data")
