"""``plain_tensor``: the one MetaTensor/numpy-to-tensor conversion of the batch transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from medgan_aug.transforms import MixUpBatchd
from medgan_aug.utils.tensors import plain_tensor


def test_metatensor_gives_its_data_as_a_plain_tensor_sharing_memory():
    meta = MetaTensor(torch.arange(6.0).reshape(2, 3), meta={"filename_or_obj": "x.png"})
    plain = plain_tensor(meta)
    assert type(plain) is torch.Tensor
    plain[0, 0] = 42.0
    assert float(meta[0, 0]) == 42.0  # a view, not a copy


def test_numpy_gives_a_tensor_view_and_other_types_are_refused_by_name():
    array = np.zeros((2, 2), dtype=np.float32)
    tensor = plain_tensor(array)
    tensor[1, 1] = 3.0
    assert array[1, 1] == 3.0
    with pytest.raises(TypeError, match=r"batch\['image'\] must be a tensor or numpy array, got list"):
        plain_tensor([[0.0]], "batch['image']")


def test_a_batch_transform_given_a_list_names_the_key():
    with pytest.raises(TypeError, match=r"batch\[.image.\] must be a tensor or numpy array"):
        MixUpBatchd(alpha=0.4)({"image": [[0.0]], "label": torch.zeros(1, 2)})
