"""VGG16 fc2 features for precision / recall (Kynkäänniemi et al. 2019): an own port with torchvision's key names,
so torchvision's published `vgg16-397923af.pth` loads strictly without torchvision."""

import torch
from torch import nn

from .preprocess import resize_antialiased
from .weights import fetch_weights, load_strict, state_digest

WEIGHTS_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
WEIGHTS_FILE = "vgg16-397923af.pth"
WEIGHTS_SHA256_PREFIX = "397923af"
WEIGHTS_ENV = "SAGAN_VGG16_WEIGHTS"
INPUT_SIZE = 224
# torchvision's configuration "D": output channels of the 3x3 convs, "M" = 2x2 max pool.
LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16(nn.Module):
    """torchvision's VGG16 layout (`features.0.weight` ... `classifier.6.bias`); `forward` returns fc2 after its
    ReLU (4096-d), the layer the precision / recall reference uses."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for v in LAYERS:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 1000),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier[:5](x)


class VGG16Features(nn.Module):
    """fc2 features {"fc2": N x 4096} of uint8 N x C x H x W images (C = 3 or 1): bilinear resize to 224x224,
    ImageNet normalisation. `weights`: a file path, a state dict, or None (`$SAGAN_VGG16_WEIGHTS`, the torch hub
    cache, or a download)."""

    preprocessing = "bilinear-224-imagenet-normalised"

    def __init__(self, weights=None, device=None):
        super().__init__()
        if isinstance(weights, dict):
            state, self.weights_sha256 = weights, "state-dict-" + state_digest(weights)
        else:
            state, self.weights_sha256 = fetch_weights(WEIGHTS_URL, WEIGHTS_SHA256_PREFIX, WEIGHTS_FILE, path=weights,
                                                       env_var=WEIGHTS_ENV, what="VGG16 weights",
                                                       option="--vgg16-weights")
        with torch.device("meta"):  # no random init of 138M parameters that the weights replace at once
            self.net = VGG16()
        load_strict(self.net, state, weights, WEIGHTS_ENV, "VGG16 weights in torchvision's format")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)
        self.device = torch.device(device or "cpu")
        self.to(self.device).eval()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            x = resize_antialiased(images, INPUT_SIZE, self.device)
            return {"fc2": self.net((x - self.mean) / self.std)}

