"""BRIDGE (blurgen.train.retrieval_model) and the retrieval losses (blurgen.train.retrieval_losses):
GeM against hand computations, frozen normalisation, the descriptor's shape and norm, weight
loading, and every loss against hand values or an independent formula."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision import models
from torchvision.ops.misc import FrozenBatchNorm2d

from blurgen.errors import BlurgenError, ConfigError
from blurgen.train.retrieval_losses import (
    ArcFace, blur_estimation_loss, combine_losses, contrastive_loss, localisation_loss, normalised_box,
)
from blurgen.train.retrieval_model import Bridge, GeM

SMALL = dict(head_dim=16, hidden_dim=8, whiten_dim=24)  # tiny heads keep each test fast


def tiny_bridge(**kwargs) -> Bridge:
    torch.manual_seed(0)
    return Bridge("resnet18", **{**SMALL, **kwargs})


# --- GeM (Eq. 1) --------------------------------------------------------------------------------

def test_gem_matches_hand_computation():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 8.0]]]])  # (1, 2, 2, 2)
    pooled = GeM()(x)
    # channel 0: ((1 + 8 + 27 + 64) / 4)^(1/3) = 25^(1/3); channel 1: zeros clamp to 1e-6, whose
    # cubes (1e-18) vanish next to 8^3: (512 / 4)^(1/3) = 128^(1/3)
    assert pooled.shape == (1, 2)
    assert pooled[0, 0].item() == pytest.approx(25 ** (1 / 3), rel=1e-6)
    assert pooled[0, 1].item() == pytest.approx(128 ** (1 / 3), rel=1e-6)


def test_gem_with_p_1_is_average_pooling_and_p_is_learnt_from_3():
    gem = GeM()
    assert gem.p.item() == 3.0 and gem.p.requires_grad
    x = torch.rand(2, 5, 3, 4) + 0.1
    gem(x).sum().backward()
    assert gem.p.grad is not None and gem.p.grad.abs().item() > 0
    with torch.no_grad():
        gem.p.fill_(1.0)
    torch.testing.assert_close(gem(x), F.adaptive_avg_pool2d(x, 1).flatten(1))


# --- BRIDGE (§3.1) ------------------------------------------------------------------------------

def test_outputs_unit_128d_descriptor_blur_and_box_in_unit_range():
    out = tiny_bridge()(torch.randn(3, 3, 32, 32))
    assert out.descriptor.shape == (3, 128)
    torch.testing.assert_close(out.descriptor.norm(dim=1), torch.ones(3))
    assert out.blur.shape == (3,) and out.box.shape == (3, 4)
    assert ((out.blur >= 0) & (out.blur <= 1)).all() and ((out.box >= 0) & (out.box <= 1)).all()


def test_frozen_norm_layers_have_no_parameters_and_do_not_change_in_training():
    model = tiny_bridge().train()
    norms = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    assert len(norms) == 20  # every BatchNorm of resnet18 (1 stem + 8 blocks x 2 + 3 downsample)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert all(not list(m.parameters()) for m in norms)  # nothing for the optimiser or a gradient
    before = {name: b.clone() for name, b in model.named_buffers()}
    conv_before = model.backbone[0].weight.detach().clone()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 32, 32) * 3 + 1).descriptor.sum().backward()
    optimiser.step()
    for name, buffer in model.named_buffers():
        torch.testing.assert_close(buffer, before[name], rtol=0, atol=0, msg=name)
    assert not torch.equal(model.backbone[0].weight, conv_before)  # the step did train the rest


def test_trainable_norm_option_does_update_statistics():
    # the counterpart of the test above: the same step with ordinary BatchNorm moves its statistics
    model = tiny_bridge(freeze_norm=False).train()
    before = model.backbone[1].running_mean.clone()
    model(torch.randn(4, 3, 32, 32) * 3 + 1)
    assert not torch.equal(model.backbone[1].running_mean, before)


def test_channels_last_gives_the_same_output():
    model = tiny_bridge().eval()
    x = torch.randn(2, 3, 40, 48)
    with torch.no_grad():
        plain = model(x)
        last = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(last.descriptor, plain.descriptor, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(last.box, plain.box, rtol=1e-4, atol=1e-5)


def _trained_looking_resnet18() -> models.ResNet:
    """A torchvision resnet18 whose BatchNorm statistics are not the identity (as trained ones)."""
    torch.manual_seed(1)
    net = models.resnet18(weights=None)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net


def test_backbone_weights_load_and_act_as_batchnorm_in_eval_mode(tmp_path):
    reference = _trained_looking_resnet18().eval()
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    model = tiny_bridge(backbone_weights=path).train()  # frozen: train mode changes nothing
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference.layer4(reference.layer3(reference.layer2(reference.layer1(
            reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))))))
        torch.testing.assert_close(model.backbone(x), expected, rtol=1e-4, atol=1e-5)


def test_bad_backbone_weights_are_one_clear_error(tmp_path):
    resnet34 = tmp_path / "resnet34.pt"
    torch.save(models.resnet34(weights=None).state_dict(), resnet34)
    with pytest.raises(BlurgenError, match="unexpected layer"):
        tiny_bridge(backbone_weights=resnet34)
    partial = tmp_path / "partial.pt"
    state = models.resnet18(weights=None).state_dict()
    del state["layer1.0.conv1.weight"]
    torch.save(state, partial)
    with pytest.raises(BlurgenError, match="missing layer1.0.conv1.weight"):
        tiny_bridge(backbone_weights=partial)
    not_a_dict = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], not_a_dict)
    with pytest.raises(BlurgenError, match="not a state dict"):
        tiny_bridge(backbone_weights=not_a_dict)
    with pytest.raises(BlurgenError, match="no such file"):
        tiny_bridge(backbone_weights=tmp_path / "absent.pt")
    pickled_module = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), pickled_module)  # a pickled object: weights_only refuses
    with pytest.raises(BlurgenError, match="not a readable torch state dict"):
        tiny_bridge(backbone_weights=pickled_module)
    with pytest.raises(BlurgenError, match="unknown backbone 'vgg16'"):
        Bridge("vgg16")


def test_weights_without_fc_load(tmp_path):
    state = {k: v for k, v in _trained_looking_resnet18().state_dict().items() if not k.startswith("fc.")}
    torch.save(state, tmp_path / "no_fc.pt")
    model = tiny_bridge(backbone_weights=tmp_path / "no_fc.pt")
    torch.testing.assert_close(model.backbone[0].weight, state["conv1.weight"])


# --- ArcFace (Eq. 9-10) -------------------------------------------------------------------------

def _arcface(weight: list[list[float]], margin: float = 0.15) -> ArcFace:
    loss = ArcFace(num_classes=len(weight), dim=len(weight[0]), margin=margin)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor(weight))
    return loss


def _ce(logits: list[float], target: int) -> float:
    """Cross entropy by hand: log-sum-exp minus the target logit."""
    return math.log(sum(math.exp(v) for v in logits)) - logits[target]


def test_arcface_hand_values():
    loss = _arcface([[2.0, 0.0], [0.0, 0.5]])  # class rows are normalised: e_x and e_y
    a = 0.3
    x = torch.tensor([[math.cos(a), math.sin(a)], [-3.0, 0.0]])
    labels = torch.tensor([0, 0])
    # sample 0: θ_y = 0.3, margin applies: 30 cos(0.45); other class: 30 cos(π/2 - 0.3) = 30 sin 0.3
    first = _ce([30 * math.cos(a + 0.15), 30 * math.sin(a)], 0)
    # sample 1: θ_y = π > π - m, the threshold branch: 30 (cos π - m sin m); other class: cos = 0
    second = _ce([30 * (-1 - 0.15 * math.sin(0.15)), 0.0], 0)
    assert loss(x, labels).item() == pytest.approx((first + second) / 2, rel=1e-5)


def test_arcface_with_margin_0_is_scaled_softmax_cross_entropy():
    torch.manual_seed(3)
    loss = ArcFace(num_classes=7, dim=5, margin=0.0)
    x, labels = torch.randn(11, 5), torch.randint(0, 7, (11,))
    xn = x.numpy() / np.linalg.norm(x.numpy(), axis=1, keepdims=True)
    w = loss.weight.detach().numpy()
    cosine = xn @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    expected = F.cross_entropy(torch.from_numpy(30.0 * cosine), labels)
    assert loss(x, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_arcface_target_logit_decreases_with_the_angle_and_trains_the_classifier():
    loss = _arcface([[1.0, 0.0], [0.0, 1.0]])
    angles = torch.linspace(0, math.pi, 721)
    x = torch.stack([angles.cos(), angles.sin()], dim=1)
    target = loss.logits(x, torch.zeros(721, dtype=torch.int64))[:, 0]
    assert (target[1:] < target[:-1]).all()  # no wrap: a larger angle is always penalised more
    loss(x[:5], torch.tensor([0, 1, 0, 1, 0])).backward()
    assert loss.weight.grad.abs().sum() > 0


# --- contrastive (Eq. 11), blur (Eq. 7), localisation (Eq. 8), joint (Eq. 12) -------------------

def test_contrastive_loss_hand_values():
    b = 0.5
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positive = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # d = √2 (cost ½·2 = 1), d = 0 (cost 0)
    negatives = torch.tensor([
        [[1.0, 0.0], [math.cos(b), math.sin(b)], [0.0, 1.0]],  # d = 0, 2 sin(b/2), √2
        [[1.0, 0.0], [0.0, -1.0], [0.0, 1.0]],  # d = √2, 2, 0
    ])
    chord = 2 * math.sin(b / 2)
    first = 1.0 + 0.5 * 0.7 ** 2 + 0.5 * (0.7 - chord) ** 2 + 0.0
    second = 0.0 + 0.0 + 0.0 + 0.5 * 0.7 ** 2
    value = contrastive_loss(query, positive, negatives, margin=0.7)
    assert value.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_blur_and_localisation_losses_hand_values():
    # |0.9 - (1 - 0.1)| = 0, |0.2 - (1 - 0.5)| = 0.3
    assert blur_estimation_loss(torch.tensor([0.9, 0.2]), torch.tensor([0.1, 0.5])).item() == pytest.approx(0.15)
    predicted = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.5, 0.5]])
    target = torch.tensor([[0.1, 0.2, 0.9, 0.7], [0.5, 0.5, 0.5, 0.5]])
    # row 0: 0.1 + 0.2 + 0.1 + 0.3 = 0.7; row 1: 0
    assert localisation_loss(predicted, target).item() == pytest.approx(0.35)


def test_normalised_box_divides_by_the_image_sides():
    box = normalised_box(torch.tensor([[10, 20, 110, 220], [0, 0, 320, 240]], dtype=torch.int32), height=240, width=320)
    torch.testing.assert_close(box, torch.tensor([[10 / 320, 20 / 240, 110 / 320, 220 / 240], [0.0, 0.0, 1.0, 1.0]]))


def test_combine_losses_weights_terms_and_refuses_bad_weights():
    terms = {"arcface": torch.tensor(2.0), "contrastive": torch.tensor(3.0), "blur": torch.tensor(0.5),
             "localisation": torch.tensor(0.25)}
    assert combine_losses(terms, {}).item() == pytest.approx(5.75)  # defaults: all 1
    # weight 0 drops the term, which then need not be computed
    partial = {k: v for k, v in terms.items() if k != "contrastive"}
    assert combine_losses(partial, {"arcface": 0.5, "contrastive": 0}).item() == pytest.approx(1.75)
    with pytest.raises(ValueError, match="'contrastive' has weight 1.0"):
        combine_losses(partial, {})
    with pytest.raises(ConfigError, match="unknown term 'triplet'"):
        combine_losses(terms, {"triplet": 1.0})
    with pytest.raises(ConfigError, match="blur must be >= 0"):
        combine_losses(terms, {"blur": -1.0})
    with pytest.raises(ConfigError, match="every weight is 0"):
        combine_losses(terms, {name: 0 for name in terms})
