"""medgan_aug.utils.npz_stream: arrays streamed block by block into a .npz that np.load reads as np.savez's."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from medgan_aug.utils.npz_stream import WRITER_MEMBER, NpzStreamWriter, npy_header, npz_size, npz_writer


def test_streamed_arrays_read_back_equal_and_sized_as_predicted(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    scores = rng.normal(size=(1000, 3)).astype(np.float32)
    path = tmp_path / "a.npz"
    with NpzStreamWriter(path) as npz:
        with npz.stream("images", np.uint8, images.shape) as stream:
            for start in range(0, 1000, 300):  # uneven blocks, the last one short
                stream.write(images[start : start + 300])
        with npz.stream("scores", "<f4", scores.shape) as stream:
            stream.write(scores[:1])
            stream.write(scores[1:])
        npz.write("empty", np.zeros((0, 14), np.uint8))
        npz.write("seed", np.asarray(7, np.int64))
    with np.load(path, allow_pickle=False) as read:
        assert sorted(read.files) == ["empty", "images", "scores", "seed"]
        assert np.array_equal(read["images"], images) and np.array_equal(read["scores"], scores)
        assert read["empty"].shape == (0, 14) and read["seed"] == 7 and read["seed"].dtype == np.int64
    specs = {
        "images": (np.dtype(np.uint8), images.shape),
        "scores": (np.dtype(np.float32), scores.shape),
        "empty": (np.dtype(np.uint8), (0, 14)),
        "seed": (np.dtype(np.int64), ()),
    }
    size = path.stat().st_size
    assert size <= npz_size(specs) < size + 4 * 200  # an upper bound, close to the truth
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_the_header_is_np_save_s_and_the_same_arrays_give_the_same_bytes(tmp_path):
    array = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    buffer = io.BytesIO()
    np.save(buffer, array)
    header = npy_header(array.dtype, array.shape)
    assert buffer.getvalue() == header + array.tobytes()
    for name in ("a.npz", "b.npz"):
        with NpzStreamWriter(tmp_path / name) as npz, npz.stream("x", array.dtype, array.shape) as stream:
            stream.write(array)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()  # no write time inside


def test_rows_must_match_the_declared_array(tmp_path):
    with NpzStreamWriter(tmp_path / "a.npz") as npz:
        with pytest.raises(ValueError, match="rows must be uint8"):
            with npz.stream("x", np.uint8, (4, 2)) as stream:
                stream.write(np.zeros((1, 2), np.float32))
        with pytest.raises(ValueError, match="y: 5 rows written, shape says 4"):
            with npz.stream("y", np.uint8, (4, 2)) as stream:
                stream.write(np.zeros((5, 2), np.uint8))
        with pytest.raises(ValueError, match="z: 3 rows written, shape says 4"):
            with npz.stream("z", np.uint8, (4, 2)) as stream:
                stream.write(np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="Python objects"):
        npy_header(object, (2,))


def test_a_signed_file_names_its_writer_and_nothing_else_does(tmp_path):
    signed = tmp_path / "signed.npz"
    with NpzStreamWriter(signed) as npz:
        npz.write("train_images", np.zeros((2, 4, 4), np.uint8))
        npz.mark("medgan_aug generate")
    assert npz_writer(signed) == "medgan_aug generate"
    with np.load(signed) as loaded:  # an ordinary member: np.load needs no pickles to read it
        assert loaded["train_images"].shape == (2, 4, 4)
        assert str(loaded[WRITER_MEMBER]) == "medgan_aug generate"
    np.savez(tmp_path / "plain.npz", train_images=np.zeros(3))
    np.savez(tmp_path / "number.npz", **{WRITER_MEMBER: np.arange(3)})  # a member of that name, not a name
    np.savez(tmp_path / "huge.npz", **{WRITER_MEMBER: np.asarray("x" * 5000)})  # too large to be ours
    (tmp_path / "text.npz").write_text("not a zip")
    for name in ("plain.npz", "number.npz", "huge.npz", "text.npz"):
        assert npz_writer(tmp_path / name) is None, name
    with pytest.raises(FileNotFoundError):
        npz_writer(tmp_path / "missing.npz")
