"""The camera adapter — the production importer of ``cv2``, ``numpy`` and ``zxingcpp``:

    decode.py   QR decoding on a frame: the shipped chain (chosen by bench/qr.py) and the hard
                passes (blur, bends, small dark codes) for frames where a code is in view
    capture.py  image and video files (``qr scan``), V4L2 devices and the camera loop

(Rendering test frames and the benchmark's other decoders live in ``readers/doubles``.)
"""

import os

# Before cv2 loads (it reads this once): an image file over this many pixels is refused from
# its header, before it is decoded — a 400 kB PNG can claim 20000×20000 and take 1.2 GB. 50 MP
# is the largest phone camera a patient is likely to photograph a card with.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(50_000_000))

from readers.devices.camera.capture import (
    HARD_EVERY,
    CameraReader,
    FileResult,
    FrameRefused,
    _Source,
    frames_of,
    is_device,
    scan_file,
)
from readers.devices.camera.decode import (
    Frame,
    code_in_view,
    decode_hard,
    decode_shipped,
    decode_zxing,
    finder_corners,
    grey,
    screen_view,
    sharpened,
    utf8,
)

__all__ = ["HARD_EVERY", "CameraReader", "FileResult", "Frame", "FrameRefused", "_Source",
           "code_in_view", "decode_hard", "decode_shipped", "decode_zxing", "finder_corners",
           "frames_of", "grey", "is_device", "scan_file", "screen_view", "sharpened", "utf8"]
