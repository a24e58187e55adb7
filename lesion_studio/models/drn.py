"""Dilated Residual Networks (Yu, Koltun, Funkhouser, CVPR 2017) for whole-radiograph classification.

Why dilation: a lesion may be a few pixels wide in a downscaled full radiograph. A ResNet strides
its feature maps down to 1/32 of the input and loses such detail; a DRN stops striding at 1/8 and
widens the receptive field with dilated convolutions instead (dilation 2, then 4), so small
structures survive into the last feature map.

Layout (channels 16-32-64-128-256-512-512-512, eight levels):

- level 1: 7x7 stem; levels 1-4 stride 1, 2, 2, 2 (output stride 8)
- levels 5-6: dilation 2 and 4 instead of further striding
- levels 7-8: dilation 2 then 1, added in the paper to remove gridding artifacts. In DRN-C they are
  BasicBlocks without the residual connection; in DRN-D the first two levels and the last two are
  plain conv-BN-ReLU stacks (and the 7x7 stem is followed by conv layers instead of residual blocks).

The image head is global average pooling and a 1x1 convolution (``num_classes`` logits; one logit
for the binary lesion/normal task). DRN was designed for dense prediction, and its output-stride-8
map is where a box-supervised **lesion-map head** (a second 1x1 convolution, ``lesion_map=True``)
learns from the radiologists' boxes where the lesion is. With it, the image score combines the two
heads (:func:`combine_logits`), and the map is what the product shows as localisation.

This module reads like torchvision's ``resnet.py``: blocks, the network,
and builder functions with typed arguments. The 3-channel, 1000-class builds match the published
parameter counts (DRN-C-26 21.1 M, DRN-D-22 16.4 M); ``tests/test_drn.py`` checks that.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from lesion_studio.errors import LesionStudioError
from lesion_studio.extras import require
from lesion_studio.models.layout import DRN_FORMAT
from lesion_studio.models.specs import DRN_ARCHS

torch = require("torch", "The DRN classifier")
from torch import Tensor, nn  # noqa: E402

from lesion_studio.models.checkpoint import check_state_shapes, load_checkpoint, select_device  # noqa: E402

Arch = Literal["C", "D"]

#: Channels per level as in the paper.
DRN_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 512, 512)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution whose padding equals its dilation, so the map size only changes by stride."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an optional residual connection (off in DRN-C's last levels)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: tuple[int, int] = (1, 1),
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride, dilation=dilation[0])
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, dilation=dilation[1])
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            out = out + identity
        return self.relu(out)


def conv_bn_relu_layers(inplanes: int, planes: int, convs: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """DRN-D's plain levels: ``convs`` conv-BN-ReLU units, the first one striding."""
    modules: list[nn.Module] = []
    for i in range(convs):
        modules += [conv3x3(inplanes if i == 0 else planes, planes, stride if i == 0 else 1, dilation),
                    nn.BatchNorm2d(planes), nn.ReLU(inplace=True)]
    return nn.Sequential(*modules)


class DRN(nn.Module):
    """A DRN-C or DRN-D network ending in global average pooling and a 1x1-conv classifier.

    ``layers`` gives the number of blocks (C) or conv units (D's plain levels) per level;
    ``channels`` the widths per level (scaled-down widths make the tiny test models).
    """

    def __init__(
        self,
        layers: Sequence[int],
        *,
        arch: Arch = "C",
        channels: Sequence[int] = DRN_CHANNELS,
        in_channels: int = 1,
        num_classes: int = 1,
        lesion_map: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 8 or len(channels) != 8:
            raise ValueError("A DRN has eight levels: give eight layer counts and eight channel widths.")
        if arch not in ("C", "D"):
            raise ValueError(f"Unknown DRN architecture {arch!r}; use 'C' or 'D'.")
        self.arch = arch
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.out_dim = channels[-1]
        c = list(channels)
        self.inplanes = c[0]

        if arch == "C":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c[0], kernel_size=7, stride=1, padding=3, bias=False),
                nn.BatchNorm2d(c[0]), nn.ReLU(inplace=True),
            )
            self.layer1 = self._make_layer(c[0], layers[0], stride=1)
            self.layer2 = self._make_layer(c[1], layers[1], stride=2)
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c[0], kernel_size=7, stride=1, padding=3, bias=False),
                nn.BatchNorm2d(c[0]), nn.ReLU(inplace=True),
            )
            self.layer1 = conv_bn_relu_layers(c[0], c[0], layers[0], stride=1)
            self.layer2 = conv_bn_relu_layers(c[0], c[1], layers[1], stride=2)
            self.inplanes = c[1]

        self.layer3 = self._make_layer(c[2], layers[2], stride=2)
        self.layer4 = self._make_layer(c[3], layers[3], stride=2)
        self.layer5 = self._make_layer(c[4], layers[4], dilation=2, new_level=False)
        self.layer6 = self._make_layer(c[5], layers[5], dilation=4, new_level=False)

        if arch == "C":
            self.layer7 = self._make_layer(c[6], layers[6], dilation=2, new_level=False, residual=False)
            self.layer8 = self._make_layer(c[7], layers[7], dilation=1, new_level=False, residual=False)
        else:
            self.layer7 = conv_bn_relu_layers(self.inplanes, c[6], layers[6], dilation=2)
            self.layer8 = conv_bn_relu_layers(c[6], c[7], layers[7], dilation=1)

        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(self.out_dim, num_classes, kernel_size=1, bias=True)
        #: The lesion-map head: one logit per output-stride-8 cell (None for the paper's image-only DRN).
        self.lesion_map: nn.Conv2d | None = (
            nn.Conv2d(self.out_dim, 1, kernel_size=1, bias=True) if lesion_map else None)
        self._init_weights()
        if self.lesion_map is not None:
            # Lesions cover a few cells of the map: starting every cell at "unlikely" (p ~ 0.02)
            # spares the first epochs the job of unlearning a 50 % prior on thousands of cells.
            nn.init.normal_(self.lesion_map.weight, std=1e-3)
            nn.init.constant_(self.lesion_map.bias, MAP_PRIOR_LOGIT)

    def _make_layer(
        self, planes: int, blocks: int, stride: int = 1, dilation: int = 1, new_level: bool = True,
        residual: bool = True,
    ) -> nn.Sequential:
        """A level of BasicBlocks; the first block changes width/stride and may need a projection.

        As in the paper, the first block of a dilated level that continues an earlier level uses
        half the dilation in its first conv, so the dilation grows smoothly.
        """
        if blocks == 0:
            return nn.Sequential()
        downsample = None
        if stride != 1 or self.inplanes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * BasicBlock.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * BasicBlock.expansion),
            )
        first = (1, 1) if dilation == 1 else (dilation // 2 if new_level else dilation, dilation)
        modules: list[nn.Module] = [BasicBlock(self.inplanes, planes, stride, downsample, first, residual)]
        self.inplanes = planes * BasicBlock.expansion
        modules += [BasicBlock(self.inplanes, planes, dilation=(dilation, dilation), residual=residual)
                    for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m is not self.fc and m is not self.lesion_map:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:
        """The output-stride-8 feature map (for class activation maps)."""
        x = self.stem(x)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4,
                      self.layer5, self.layer6, self.layer7, self.layer8):
            x = layer(x)
        return x

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(image logits (N, num_classes), lesion-map logits (N, h, w) or None without the map head)."""
        f = self.features(x)
        image = torch.flatten(self.fc(self.avgpool(f)), 1)
        return image, (self.lesion_map(f)[:, 0] if self.lesion_map is not None else None)

    def forward(self, x: Tensor, heads: bool = False) -> Tensor | tuple[Tensor, Tensor | None]:
        """Score logits of shape (N, num_classes): the image head's, combined with the pooled lesion
        map when the network has one (:func:`combine_logits`). ``heads=True`` returns both heads'
        outputs instead (:meth:`heads`; trainers call it through ``forward`` so DistributedDataParallel
        sees the pass)."""
        image, lesion_map = self.heads(x)
        if heads:
            return image, lesion_map
        return image if lesion_map is None else combine_logits(image, lesion_map)

    def score_and_localisation(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(score logits (N,), localisation (N, h, w) logits) in one pass over the features.

        The localisation is the map the product shows for where the evidence is: the lesion map
        when the network has one, else the class-activation map of the image head (the 1x1
        classifier applied before pooling, whose mean is the image logit; Zhou et al. 2016).
        """
        f = self.features(x)
        cam = self.fc(f)[:, 0]
        image = cam.mean(dim=(1, 2))
        if self.lesion_map is None:
            return image, cam
        lesion_map = self.lesion_map(f)[:, 0]
        return combine_logits(image[:, None], lesion_map)[:, 0], lesion_map


#: The lesion-map head's starting bias: sigmoid(-4) ~ 0.018, about the share of a map a lesion covers.
MAP_PRIOR_LOGIT = -4.0


def pooled_map_logit(lesion_map: Tensor) -> Tensor:
    """(N, h, w) map logits → (N,) the logit of the most lesion-like cell.

    Max pooling: a lesion is local, and one cell that is sure of it should make the image
    positive however small the lesion is against the whole radiograph (mean pooling would dilute it).
    """
    return lesion_map.flatten(1).amax(dim=1)


def combine_logits(image: Tensor, lesion_map: Tensor) -> Tensor:
    """The image score of a network with both heads: the mean of the image logit and the pooled
    map logit, (N, 1). The image head sees the whole radiograph's context; the map head knows
    where radiologists draw lesions. Averaging logits keeps a score that is a logit again, so
    the sigmoid, the filter, ONNX scoring and mirror TTA treat it like any other logit."""
    return 0.5 * (image[:, :1] + pooled_map_logit(lesion_map)[:, None])


# ------------------------------------------------------------------------------------ builders
def drn_c_26(*, in_channels: int = 1, num_classes: int = 1, lesion_map: bool = False) -> DRN:
    """DRN-C-26: residual levels 1-6, non-residual dilated blocks in levels 7-8."""
    return DRN([1, 1, 2, 2, 2, 2, 1, 1], arch="C", in_channels=in_channels, num_classes=num_classes,
               lesion_map=lesion_map)


def drn_d_22(*, in_channels: int = 1, num_classes: int = 1, lesion_map: bool = False) -> DRN:
    """DRN-D-22: plain conv levels 1-2 and 7-8 around residual levels 3-6."""
    return DRN([1, 1, 2, 2, 2, 2, 1, 1], arch="D", in_channels=in_channels, num_classes=num_classes,
               lesion_map=lesion_map)


def drn_d_22_half(*, in_channels: int = 1, num_classes: int = 1, lesion_map: bool = False) -> DRN:
    """DRN-D-22 with the channels of levels 5-8 halved (256-256-256-256 instead of 256-512-512-512).

    Why: at output stride 8 the 512-channel dilated levels cost most of a DRN-D-22's arithmetic
    (about 80 % at 128 px), so halving them makes it about 3x cheaper on a CPU, which buys the
    input resolution that thin fractures need. The topology, dilations and stride are DRN-D-22's.
    """
    return DRN([1, 1, 2, 2, 2, 2, 1, 1], arch="D", channels=(16, 32, 64, 128, 128, 256, 256, 256),
               in_channels=in_channels, num_classes=num_classes, lesion_map=lesion_map)


def drn_d_22_slim(*, in_channels: int = 1, num_classes: int = 1, lesion_map: bool = False) -> DRN:
    """:func:`drn_d_22_half` with the dilated levels 6-8 at 192 channels instead of 256.

    Why: on a CPU without native bf16 the hand study's step is bound by arithmetic, and level 6 (two
    dilated residual blocks at output stride 8) is 40 % of ``drn_d_22_half``'s. At 192 channels the
    network costs 1.95 GFLOP per 128 px image instead of 2.66 (-26 %), with the same topology,
    dilations, stride and heads. A whole hand-study seed is 12 % faster (307 s against 347 s on two
    idle Zen 3 cores) at the same validation AUC over three seeds (docs/performance.md).
    """
    return DRN([1, 1, 2, 2, 2, 2, 1, 1], arch="D", channels=(16, 32, 64, 128, 128, 192, 192, 192),
               in_channels=in_channels, num_classes=num_classes, lesion_map=lesion_map)


def drn_d_tiny(*, in_channels: int = 1, num_classes: int = 1, width: int = 8, lesion_map: bool = False) -> DRN:
    """A width-reduced DRN-D (one unit per level) for tests and quick demos: same topology, ~1% of the cost."""
    channels = (width, width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width, 8 * width)
    return DRN([1, 1, 1, 1, 1, 1, 1, 1], arch="D", channels=channels, in_channels=in_channels,
               num_classes=num_classes, lesion_map=lesion_map)


def drn_c_tiny(*, in_channels: int = 1, num_classes: int = 1, width: int = 8, lesion_map: bool = False) -> DRN:
    """A width-reduced DRN-C (one block per level) for tests."""
    channels = (width, width, 2 * width, 4 * width, 4 * width, 8 * width, 8 * width, 8 * width)
    return DRN([1, 1, 1, 1, 1, 1, 1, 1], arch="C", channels=channels, in_channels=in_channels,
               num_classes=num_classes, lesion_map=lesion_map)


#: Builders by config name. The names are listed once, in :data:`lesion_studio.models.specs.DRN_ARCHS`
#: (torch-free code validates configs against them); each is a builder function of this module.
ARCHITECTURES = {name: globals()[name] for name in DRN_ARCHS}


def build_drn(arch: str, *, in_channels: int = 1, num_classes: int = 1, lesion_map: bool = False) -> DRN:
    """A network by its config name (:data:`~lesion_studio.models.specs.DRN_ARCHS`), with or without
    the lesion-map head."""
    from lesion_studio.errors import ConfigError

    try:
        builder = ARCHITECTURES[arch]
    except KeyError:
        raise ConfigError(f"Unknown classifier architecture {arch!r}; choose one of "
                          f"{', '.join(ARCHITECTURES)}.") from None
    return builder(in_channels=in_channels, num_classes=num_classes, lesion_map=lesion_map)


def has_lesion_map(meta: dict[str, Any]) -> bool:
    """Whether a checkpoint's metadata describes a network with the lesion-map head."""
    config = meta.get("config") or {}
    return isinstance(config, dict) and config.get("head") == "image+map"


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[DRN, dict[str, Any]]:
    """A trained classifier (eval mode) and its checkpoint metadata."""
    states, meta = load_checkpoint(path)
    if meta.get("format") != DRN_FORMAT:
        raise LesionStudioError(f"{Path(path).name} is not a Lesion Studio classifier checkpoint.")
    arch = meta.get("arch")
    if not isinstance(arch, str) or not isinstance(states.get("model"), dict):
        raise LesionStudioError(f"{Path(path).name}: the classifier metadata is damaged (architecture {arch!r}).")
    with_map = has_lesion_map(meta)
    check_state_shapes(lambda: build_drn(arch, lesion_map=with_map), states["model"],
                       f"{Path(path).name} (classifier {arch})")
    model = build_drn(arch, lesion_map=with_map)
    model.load_state_dict(states["model"])
    dev = device if isinstance(device, torch.device) else select_device(device)
    return model.to(dev).eval(), meta


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
