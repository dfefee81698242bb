"""Decoding one image file: modes, orientation, crops, and errors that name the file."""

import numpy as np
import pytest
from conftest import BLUE, RED, luma
from PIL import Image

from sagan.data.transforms import load_image
from sagan.errors import DataError


def test_load_image_converts_rgb_and_gray(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (40, 30), RED).save(path)
    assert (load_image(path, 8, 3) == RED).all()
    gray = load_image(path, 8, 1)
    assert gray.shape == (8, 8, 1) and gray.dtype == np.uint8 and (gray == luma(RED)).all()


def test_load_image_crops_the_centre_before_resizing(tmp_path):
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, 10:30] = BLUE  # the largest centered square
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    assert (load_image(tmp_path / "wide.png", 8, 3) == BLUE).all()
    assert (load_image(tmp_path / "wide.png", 8, 3, crop=12) == BLUE).all()
    with pytest.raises(DataError, match=r"crop 30 is larger than image .*wide\.png \(40x20\)"):
        load_image(tmp_path / "wide.png", 8, 3, crop=30)


def palette_image(transparent: bool) -> Image.Image:
    image = Image.new("P", (16, 16), 1)
    image.putpalette([*RED, *BLUE])
    if transparent:
        image.info["transparency"] = 1
    return image


def sixteen_bit(value: int) -> Image.Image:
    return Image.fromarray(np.full((16, 16), value, dtype=np.uint16))


@pytest.mark.parametrize("name, make, rgb", [
    ("palette.png", lambda: palette_image(False), BLUE),
    ("palette-transparent.png", lambda: palette_image(True), (255, 255, 255)),
    ("rgba.png", lambda: Image.new("RGBA", (16, 16), (*RED, 0)), (255, 255, 255)),
    ("half-transparent.png", lambda: Image.new("RGBA", (16, 16), (0, 0, 0, 128)), (127, 127, 127)),
    ("la.png", lambda: Image.new("LA", (16, 16), (0, 255)), (0, 0, 0)),
    ("bilevel.png", lambda: Image.new("1", (16, 16), 1), (255, 255, 255)),
    ("16-bit-white.png", lambda: sixteen_bit(65535), (255, 255, 255)),
    ("16-bit-mid.png", lambda: sixteen_bit(128 * 257), (128, 128, 128)),
    ("16-bit.tif", lambda: sixteen_bit(64 * 257), (64, 64, 64)),
    ("cmyk.jpg", lambda: Image.new("CMYK", (16, 16), (0, 0, 0, 0)), (255, 255, 255)),
    ("gray.jpg", lambda: Image.new("L", (16, 16), 90), (90, 90, 90)),
    ("red.bmp", lambda: Image.new("RGB", (16, 16), RED), RED),
    ("red.gif", lambda: Image.new("RGB", (16, 16), RED), RED),
])
def test_image_modes_convert_sensibly(tmp_path, name, make, rgb):
    path = tmp_path / name
    make().save(path)
    for channels, expected in ((3, rgb), (1, luma(rgb))):
        image = load_image(path, 8, channels)
        assert image.shape == (8, 8, channels) and image.dtype == np.uint8
        assert np.abs(image.astype(int) - expected).max() <= 3  # JPEG rounding


def test_load_image_follows_exif_orientation(tmp_path):
    pixels = np.empty((16, 16, 3), dtype=np.uint8)
    pixels[:, :8], pixels[:, 8:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 3  # Orientation: rotated 180 degrees
    Image.fromarray(pixels).save(tmp_path / "rotated.jpg", exif=exif, quality=95, subsampling=0)
    image = load_image(tmp_path / "rotated.jpg", 16, 3).astype(int)
    assert np.abs(image[8, 2] - BLUE).max() <= 8 and np.abs(image[8, 13] - RED).max() <= 8


@pytest.mark.parametrize("content", [b"not an image", None])
def test_unreadable_images_name_the_file(tmp_path, content):
    path = tmp_path / "broken.jpg"
    if content is None:  # a JPEG cut short
        Image.new("RGB", (64, 64), RED).save(path, quality=95)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(DataError, match=r"cannot decode image .*broken\.jpg"):
        load_image(path, 8, 3)
