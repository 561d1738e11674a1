"""Tests for medgan_aug.networks: shapes, parameter counts, conditioning, init (model files: test_model_file.py)."""

from __future__ import annotations

import pytest
import torch

from medgan_aug.networks.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    LatentConvTranspose2d,
    count_parameters,
    to_unit_range,
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("size", [28, 64])
@pytest.mark.parametrize("num_labels", [0, 14, 1])
def test_shapes_and_ranges(size, num_labels):
    torch.manual_seed(0)
    g = DCGANGenerator(size, num_labels=num_labels, base_channels=8)
    d = DCGANDiscriminator(size, num_labels=num_labels, base_channels=8)
    z = torch.randn(3, 100)
    y = (torch.rand(3, num_labels) > 0.5).float() if num_labels else None
    x = g(z, y)
    assert x.shape == (3, 1, size, size)
    assert x.min() >= -1 and x.max() <= 1
    logits = d(x, y)
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("size", [28, 64])
def test_spectral_norm_discriminator(size):
    d = DCGANDiscriminator(size, num_labels=14, base_channels=8, spectral_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert any("parametrizations" in name for name, _ in d.named_parameters())
    d.train()
    for _ in range(3):  # power iterations converge: the largest singular value of fc's weight -> 1
        d(torch.randn(4, 1, size, size), torch.zeros(4, 14))
    sigma = torch.linalg.matrix_norm(d.fc.weight, ord=2)
    assert abs(sigma.item() - 1.0) < 0.05


# numbers in the module docstring table (base_channels=64, latent 100)
@pytest.mark.parametrize(
    "size,num_labels,g_params,d_params",
    [
        (28, 0, 1_911_233, 431_937),
        (28, 14, 2_086_849, 489_281),
        (64, 0, 3_574_657, 2_763_585),
        (64, 14, 3_689_345, 2_878_273),
    ],
)
def test_parameter_counts_match_docstring(size, num_labels, g_params, d_params):
    assert count_parameters(DCGANGenerator(size, num_labels=num_labels)) == g_params
    assert count_parameters(DCGANDiscriminator(size, num_labels=num_labels)) == d_params


def test_dcgan_initialisation():
    torch.manual_seed(0)
    g = DCGANGenerator(28, base_channels=32)
    w = g.net[3].weight  # second transposed convolution
    assert abs(w.mean().item()) < 0.002
    assert abs(w.std().item() - 0.02) < 0.002
    bn = g.net[1]
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and torch.all(bn.bias == 0)


def test_projection_term_depends_on_labels():
    torch.manual_seed(0)
    d = DCGANDiscriminator(28, num_labels=14, base_channels=8).eval()
    x = torch.randn(2, 1, 28, 28)
    zero, one = torch.zeros(2, 14), torch.zeros(2, 14)
    one[:, 3] = 1
    with torch.no_grad():
        h = d.features(x).flatten(1)
        base = d.fc(h).squeeze(1)
        assert torch.allclose(d(x, zero), base)  # "no finding": only the unconditional term
        expected = base + (h * d.embed.weight[:, 3]).sum(1)
        assert torch.allclose(d(x, one), expected, atol=1e-5)


def test_generator_conditioning_changes_output():
    torch.manual_seed(0)
    g = DCGANGenerator(28, num_labels=14, base_channels=8).eval()
    z = torch.randn(2, 100)
    y = torch.zeros(2, 14)
    y2 = y.clone()
    y2[:, 1] = 1
    assert not torch.allclose(g(z, y), g(z, y2))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(32)
    with pytest.raises(ValueError, match="latent_dim"):
        DCGANGenerator(28, latent_dim=0)
    with pytest.raises(ValueError, match="num_labels"):
        DCGANDiscriminator(28, num_labels=-1)
    g = DCGANGenerator(28, num_labels=14, base_channels=4)
    with pytest.raises(ValueError, match="labels of shape"):
        g(torch.randn(2, 100))
    with pytest.raises(ValueError, match=r"\(2, 14\)"):
        g(torch.randn(2, 100), torch.zeros(2, 13))
    with pytest.raises(ValueError, match="z must have shape"):
        g(torch.randn(2, 99), torch.zeros(2, 14))
    with pytest.raises(ValueError, match="unconditional"):
        DCGANGenerator(28, base_channels=4)(torch.randn(2, 100), torch.zeros(2, 14))
    with pytest.raises(ValueError, match="x must have shape"):
        DCGANDiscriminator(28, base_channels=4)(torch.randn(2, 1, 64, 64))


def test_to_unit_range():
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0])
    assert torch.equal(to_unit_range(x), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_latent_conv_transpose_is_the_transposed_convolution(channels_last, bias):
    """The matrix-product path computes what nn.ConvTranspose2d computes, forward and backward."""
    torch.manual_seed(0)
    fast = LatentConvTranspose2d(10, 6, 7, bias=bias)
    plain = torch.nn.ConvTranspose2d(10, 6, 7, bias=bias)
    plain.load_state_dict(fast.state_dict())
    if channels_last:
        fast, plain = (m.to(memory_format=torch.channels_last) for m in (fast, plain))
    x = torch.randn(5, 10, 1, 1, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, ref = fast(x), plain(x2)
    assert out.shape == ref.shape == (5, 6, 7, 7)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-6)
    if bias:
        torch.testing.assert_close(fast.bias.grad, plain.bias.grad)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = fast(x)
    assert low.dtype == torch.bfloat16  # autocast applies as it does to the convolution
    torch.testing.assert_close(low.float(), ref, rtol=0.02, atol=0.02)


def test_latent_conv_transpose_falls_back_on_other_inputs():
    torch.manual_seed(0)
    fast = LatentConvTranspose2d(4, 3, 3)
    x = torch.randn(2, 4, 5, 5)  # not a 1x1 input: the general transposed convolution
    torch.testing.assert_close(fast(x), torch.nn.functional.conv_transpose2d(x, fast.weight, fast.bias))


@pytest.mark.parametrize("size", [28, 64])
def test_generator_first_layer_keeps_the_model_file_keys(size):
    g = DCGANGenerator(size, num_labels=14, base_channels=8)
    assert isinstance(g.net[0], LatentConvTranspose2d)
    assert type(g.net[3]) is torch.nn.ConvTranspose2d  # the upsampling layers are unchanged
    plain = torch.nn.ConvTranspose2d(
        g.latent_dim + 14, g.net[0].out_channels, g.net[0].kernel_size, bias=False
    )
    assert g.net[0].state_dict().keys() == plain.state_dict().keys()
    assert g.net[0].weight.shape == plain.weight.shape
