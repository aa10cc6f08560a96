"""Dataset reading, split policies and augmentation (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facestream.engines.training.data import (
    Augmenter,
    apply_split,
    load_image_folder,
    make_augmenter,
    split_by_file_index,
)
from facestream.errors import FacestreamError

ORL = Path(__file__).resolve().parents[4] / "shared" / "data" / "orl_att_faces"


def one_line_error(func, *args, **kwargs) -> str:
    with pytest.raises(FacestreamError) as info:
        func(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_reads_image_folder(image_folder):
    ds = load_image_folder(image_folder)
    assert ds.classes == ["person0", "person1", "person2"]
    assert ds.images.shape == (30, 128, 128) and ds.images.dtype == np.float32
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0
    assert np.bincount(ds.labels).tolist() == [10, 10, 10]


def test_missing_folder_is_named(tmp_path):
    assert str(tmp_path / "nope") in one_line_error(load_image_folder, tmp_path / "nope")


def test_file_instead_of_folder(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("x")
    assert "is a file" in one_line_error(load_image_folder, f)


def test_empty_folder(tmp_path):
    (tmp_path / "alice").mkdir()
    assert "no person folders with images" in one_line_error(load_image_folder, tmp_path)


def test_one_class(make_image_folder, tmp_path):
    root = make_image_folder(tmp_path / "one", classes=1, per_class=3)
    assert "only one class ('person0')" in one_line_error(load_image_folder, root)


def test_unreadable_image_is_named(image_folder):
    bad = image_folder / "person1" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    msg = one_line_error(load_image_folder, image_folder)
    assert "cannot read image" in msg and str(bad) in msg


def test_file_index_split_uses_natural_order(image_folder):
    ds = load_image_folder(image_folder)
    train, test = apply_split(ds, "orl")
    assert len(train) == 15 and len(test) == 15
    assert sorted(int(f.stem) for f in train.files if f.parent.name == "person0") == [1, 2, 3, 4, 5]
    assert sorted(int(f.stem) for f in test.files if f.parent.name == "person0") == [6, 7, 8, 9, 10]


def test_file_index_split_needs_enough_images(make_image_folder, tmp_path):
    ds = load_image_folder(make_image_folder(tmp_path / "few", classes=2, per_class=4))
    assert "needs more than 5" in one_line_error(split_by_file_index, ds, 5)


def test_random_split_is_stratified_and_seeded(image_folder):
    ds = load_image_folder(image_folder)
    a_train, a_test = apply_split(ds, "random", test_fraction=0.3, seed=1)
    b_train, b_test = apply_split(ds, "random", test_fraction=0.3, seed=1)
    c_train, _ = apply_split(ds, "random", test_fraction=0.3, seed=2)
    assert np.bincount(a_test.labels).tolist() == [3, 3, 3]
    assert a_test.files == b_test.files
    assert {str(f) for f in a_train.files} != {str(f) for f in c_train.files}
    assert not {str(f) for f in a_train.files} & {str(f) for f in a_test.files}


def test_unknown_split_policy(image_folder):
    ds = load_image_folder(image_folder)
    assert "unknown split policy" in one_line_error(apply_split, ds, "alphabetical")


def test_augmenter_changes_images_reproducibly(tiny_dataset):
    aug = Augmenter(p_light=1, p_blur=1, p_affine=1, p_flip=1, p_erase=1)
    a = aug.batch(tiny_dataset.images[:4], np.random.default_rng(3))
    b = aug.batch(tiny_dataset.images[:4], np.random.default_rng(3))
    assert a.shape == (4, 128, 128) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - tiny_dataset.images[:4]).mean() > 0.01


def test_pose_level_moves_every_image_and_keeps_its_light():
    img = np.zeros((128, 128), np.float32)
    img[40:90, 30:70] = 0.8  # an off-centre block: any rotation, shift or mirror moves it
    aug = make_augmenter("pose")
    outs = [aug(img, np.random.default_rng(s)) for s in range(20)]
    assert all(np.abs(o - img).mean() > 1e-3 for o in outs), "an image went through unchanged"
    assert all(abs(o.max() - 0.8) < 0.05 for o in outs), "pose augmentation must not change the light"
    mirrored = sum(o[:, :64].sum() < o[:, 64:].sum() for o in outs)
    assert 3 <= mirrored <= 17, f"about half should be mirrored, got {mirrored}/20"


def test_unknown_augmentation_level_is_named():
    assert "unknown augmentation level 'heavy'" in one_line_error(make_augmenter, "heavy")


def test_low_light_darkens():
    img = np.full((128, 128), 0.6, np.float32)
    aug = Augmenter(p_light=1, p_blur=0, p_affine=0, p_flip=0, p_erase=0)
    darker = [aug(img, np.random.default_rng(s)).mean() for s in range(20)]
    assert min(darker) < 0.4


@pytest.mark.needs_data
def test_orl_classic_split():
    if not ORL.is_dir():
        pytest.skip(f"ORL faces not present at {ORL} (shared data is not in this checkout)")
    ds = load_image_folder(ORL)
    train, test = apply_split(ds, "orl")
    assert len(ds.classes) == 40 and len(train) == 200 and len(test) == 200
    assert {f.name for f in train.files} == {f"{i}.pgm" for i in range(1, 6)}
