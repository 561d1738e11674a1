"""The one model-file format: round trips of every network, files of the old two formats, refusals that name
the file, and a generator round trip that leaves SyntheticDataset items byte-identical."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from medgan_aug.data.synthetic import SyntheticDataset
from medgan_aug.networks.classifiers import ResNet18Classifier, SmallCNN, build_classifier
from medgan_aug.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from medgan_aug.networks.diffusion import DiffusionGenerator
from medgan_aug.networks.model_file import (
    MODEL_FORMAT,
    MODEL_VERSION,
    NETWORKS,
    load_classifier,
    load_generator,
    load_model,
    save_classifier,
    save_generator,
    save_model,
)
from medgan_aug.utils.atomic import current_umask
from medgan_aug.utils.errors import GeneratorFileError, ModelFileError


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trained_generator(num_labels: int = 14) -> DCGANGenerator:
    torch.manual_seed(0)
    g = DCGANGenerator(28, num_labels=num_labels, base_channels=8)
    g.train()
    g(torch.randn(8, 100), torch.zeros(8, num_labels) if num_labels else None)  # BN stats away from init
    return g.eval()


def _old_generator_file(g: DCGANGenerator, path, meta: dict) -> None:
    """A generator.pt as medgan_aug wrote it before the one format (format "medgan_aug.generator", v1)."""
    state = {k: v.detach().cpu().clone() for k, v in g.state_dict().items()}
    payload = {
        "format": "medgan_aug.generator",
        "version": 1,
        "arch": g.arch,
        "state_dict": state,
        "meta": meta,
    }
    torch.save(payload, path)


def _old_classifier_file(model, name: str, path, meta: dict) -> None:
    """A classifier.pt as `medgan-aug classify` wrote it before the one format ("medgan_aug.classifier", v1)."""
    arch = {"name": name, **{k: model.arch[k] for k in ("in_channels", "num_outputs", "image_size")}}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {"format": "medgan_aug.classifier", "version": 1, "arch": arch, "state_dict": state, "meta": meta},
        path,
    )


def test_generator_file_roundtrip(tmp_path):
    g = _trained_generator()
    labels = np.eye(14, dtype=np.uint8)[:5]
    path = save_generator(
        g, tmp_path / "g.pt", {"label_names": ["a"] * 14, "train_labels": labels, "fraction": 0.5}
    )
    assert sorted(os.listdir(tmp_path)) == ["g.pt"]  # no temporary file left behind
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # as open() would
    g2, meta = load_generator(path)
    assert type(g2) is DCGANGenerator and not g2.training and g2.arch == g.arch
    for (k, a), (_, b) in zip(g.state_dict().items(), g2.state_dict().items()):
        assert torch.equal(a, b), k
    z, y = torch.randn(4, 100), torch.zeros(4, 14)
    assert torch.equal(g(z, y), g2(z, y))
    assert meta["train_labels"] == labels.tolist() and meta["fraction"] == 0.5
    raw = torch.load(path, weights_only=True)
    assert (raw["format"], raw["version"], raw["network"]) == ("medgan_aug.model", 2, "DCGANGenerator")
    assert (MODEL_FORMAT, MODEL_VERSION) == ("medgan_aug.model", 2)
    assert set(raw["arch"]) == {"image_size", "latent_dim", "num_labels", "base_channels", "out_channels"}


@pytest.mark.parametrize(
    "model",
    [
        DCGANGenerator(28, num_labels=3, base_channels=4),
        DCGANDiscriminator(28, num_labels=3, base_channels=4, spectral_norm=True),
        DCGANDiscriminator(64, base_channels=4),
        SmallCNN(1, 3, 28, embedding_dim=16, dropout=0.1),
        ResNet18Classifier(3, 2, 64),
        DiffusionGenerator(28, num_labels=3, base_channels=4, num_inference_steps=7, guidance_scale=0.5),
    ],
    ids=lambda m: type(m).__name__,
)
def test_every_network_round_trips(model, tmp_path):
    assert set(NETWORKS) == {
        "DCGANGenerator",
        "DCGANDiscriminator",
        "SmallCNN",
        "ResNet18Classifier",
        "DiffusionGenerator",
    }
    model.eval()
    path = save_model(model, tmp_path / "m.pt", meta={"seed": np.int64(3), "where": tmp_path})
    state = torch.get_rng_state()
    loaded, meta = load_model(path)
    assert torch.equal(torch.get_rng_state(), state)  # rebuilding does not draw from the caller's RNG
    assert type(loaded) is type(model) and loaded.arch == model.arch and not loaded.training
    assert meta == {"seed": 3, "where": str(tmp_path)}
    assert list(loaded.state_dict()) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    if isinstance(model, (DCGANGenerator, DiffusionGenerator)):
        x, labels = (torch.randn(2, model.latent_dim),), torch.eye(3)[:2]
    else:
        c = model.arch.get("in_channels", 1)
        x, labels = (torch.rand(2, c, model.arch["image_size"], model.arch["image_size"]),), torch.eye(3)[:2]
    extra = (labels,) if getattr(model, "num_labels", 0) else ()
    with torch.no_grad():
        assert torch.equal(loaded(*x, *extra), model(*x, *extra))


def test_classifier_file_round_trip(tmp_path):
    model = build_classifier("small_cnn", 1, 14, 28, seed=0).eval()
    path = tmp_path / "sub" / "extractor.pt"
    save_classifier(model, path, meta={"flag": "chestmnist", "label_names": ["a"] * 14, "seed": 0})
    loaded, meta = load_classifier(path)
    assert meta == {"flag": "chestmnist", "label_names": ["a"] * 14, "seed": 0}
    assert not loaded.training and loaded.arch == model.arch
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(x), model.features(x), rtol=0, atol=0)
    assert sorted(p.name for p in path.parent.iterdir()) == ["extractor.pt"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # as open() would
    with pytest.raises(TypeError, match="meta"):
        save_classifier(model, tmp_path / "x.pt", meta={"bad": object()})
    with pytest.raises(TypeError, match="build_classifier"):
        save_classifier(torch.nn.Linear(2, 2), tmp_path / "x.pt")
    with pytest.raises(TypeError, match="DCGANGenerator, DCGANDiscriminator, SmallCNN, ResNet18Classifier"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x.pt")


def test_files_of_the_old_two_formats_still_load(tmp_path):
    g = _trained_generator()
    old_meta = {"flag": "chestmnist", "train_labels": torch.eye(14)[:3], "iterations": 7}
    _old_generator_file(g, tmp_path / "generator.pt", old_meta)
    g2, meta = load_generator(tmp_path / "generator.pt")
    assert (
        g2.arch == g.arch and meta["iterations"] == 7 and torch.equal(meta["train_labels"], torch.eye(14)[:3])
    )
    z, y = torch.randn(3, 100), torch.eye(14)[:3]
    assert torch.equal(g2(z, y), g(z, y))

    for name, cls in (("small_cnn", SmallCNN), ("resnet18", ResNet18Classifier)):
        model = build_classifier(name, 1, 2, 28, seed=1).eval()
        _old_classifier_file(model, name, tmp_path / f"{name}.pt", {"flag": "pneumoniamnist", "seed": 1})
        loaded, meta = load_classifier(tmp_path / f"{name}.pt")
        assert (
            type(loaded) is cls
            and loaded.arch == model.arch
            and meta == {"flag": "pneumoniamnist", "seed": 1}
        )
        x = torch.rand(2, 1, 28, 28)
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))
        same, _ = load_model(tmp_path / f"{name}.pt")
        assert type(same) is cls

    bad = {"format": "medgan_aug.classifier", "version": 1, "arch": {"name": "vgg", "in_channels": 1}}
    torch.save({**bad, "state_dict": {}}, tmp_path / "bad_arch.pt")
    with pytest.raises(ModelFileError, match="bad_arch.pt has a malformed 'arch'"):
        load_classifier(tmp_path / "bad_arch.pt")


def test_each_loader_refuses_the_other_kind(tmp_path):
    save_classifier(build_classifier("small_cnn", 1, 14, 28, seed=0), tmp_path / "classifier.pt")
    refused = "classifier.pt holds a SmallCNN, not a DCGANGenerator; load it with load_classifier"
    with pytest.raises(ModelFileError, match=refused):
        load_generator(tmp_path / "classifier.pt")
    _old_classifier_file(build_classifier("resnet18", 1, 14, 28), "resnet18", tmp_path / "old_cls.pt", {})
    with pytest.raises(ModelFileError, match="old_cls.pt holds a ResNet18Classifier, not a DCGANGenerator"):
        load_generator(tmp_path / "old_cls.pt")
    save_generator(DCGANGenerator(28, base_channels=4), tmp_path / "generator.pt")
    refused = "generator.pt holds a DCGANGenerator, not a SmallCNN or ResNet18Classifier; load it with load_generator"
    with pytest.raises(ModelFileError, match=refused):
        load_classifier(tmp_path / "generator.pt")
    save_model(DCGANDiscriminator(28, base_channels=4), tmp_path / "d.pt")
    with pytest.raises(ModelFileError, match="d.pt holds a DCGANDiscriminator.*load_model"):
        load_generator(tmp_path / "d.pt")
    assert GeneratorFileError is ModelFileError and issubclass(ModelFileError, ValueError)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.ones(2)}, other)
    with pytest.raises(ModelFileError, match="other.pt is not a medgan_aug model file"):
        load_generator(other)
    good = save_generator(DCGANGenerator(28, base_channels=4), tmp_path / "good.pt")
    payload = torch.load(good, weights_only=True)

    def variant(name: str, **change) -> str:
        broken = {**payload, **change}
        broken = {k: v for k, v in broken.items() if v is not None}
        torch.save(broken, tmp_path / name)
        return str(tmp_path / name)

    cases = {
        variant("v99.pt", version=99): "v99.pt has version 99",
        variant("old_v2.pt", format="medgan_aug.generator", version=2): "old_v2.pt has version 2",
        variant("no_net.pt", network=None): "no_net.pt lacks its 'network' entry",
        variant("no_state.pt", state_dict=None): "no_state.pt lacks its 'state_dict' entry",
        variant("net.pt", network="UNet"): "net.pt holds an unknown network 'UNet'",
        variant("arch.pt", arch={**payload["arch"], "image_size": 30}): "arch.pt: weights do not fit",
        variant("keys.pt", state_dict={k: v for k, v in list(payload["state_dict"].items())[1:]}): (
            "keys.pt: weights do not fit.*Missing key"
        ),
        variant("obj.pt", state_dict={"x": 1}): "obj.pt: 'state_dict' holds something else than tensors",
        variant("meta.pt", meta=[1]): "meta.pt: 'meta' must be a dict",
    }
    for name, message in cases.items():
        with pytest.raises(ModelFileError, match=message):
            load_model(name)
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.pt is corrupt or truncated"):
        load_model(tmp_path / "cut.pt")
    (tmp_path / "text.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="text.pt"):
        load_classifier(tmp_path / "text.pt")
    with pytest.raises(TypeError, match="plain types"):
        save_generator(DCGANGenerator(28, base_channels=4), tmp_path / "bad.pt", {"obj": object()})


class _Payload:
    """A pickle that would create a marker file when unpickled without weights_only."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_file_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    _Payload.marker = str(marker)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": MODEL_FORMAT, "version": MODEL_VERSION, "x": _Payload()}, fh)
    for load in (load_model, load_generator, load_classifier):
        with pytest.raises(ModelFileError, match="refusing to load model file .*evil.pt"):
            load(path)
    assert not marker.exists()


@pytest.mark.parametrize("old", [False, True])
def test_generator_round_trip_keeps_synthetic_items_byte_identical(tmp_path, old):
    g = _trained_generator(num_labels=14)
    pool = np.eye(14, dtype=np.float32)[[0, 3, 3, 7, 13]]
    meta = {"train_labels": torch.from_numpy(pool), "label_names": [f"f{i}" for i in range(14)]}
    path = tmp_path / "generator.pt"
    _old_generator_file(g, path, meta) if old else save_generator(g, path, meta)
    before = SyntheticDataset(g, 40, label_sampler="joint", label_pool=pool, seed=5, batch_size=16)
    after = SyntheticDataset.from_run(path, 40, seed=5, batch_size=16)
    for i in range(40):
        a, b = before[i], after[i]
        assert a["image"].numpy().tobytes() == b["image"].numpy().tobytes(), i
        assert a["label"].numpy().tobytes() == b["label"].numpy().tobytes(), i
    assert after.label_names == meta["label_names"]
