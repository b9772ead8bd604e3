"""Frame stamp: a frame counter and capture time written into the luma plane as big blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The one definition of the stamp format. The test-pattern camera writes it, the double reads it.
#
# Layout: the top band of the luma (Y) plane is a grid of COLUMNS x ROWS square blocks, each
# block one bit (black = 0, white = 1). Block edges sit at fractions of the frame width
# (column c spans [c*W/COLUMNS, (c+1)*W/COLUMNS), rows likewise), so the stamp survives the
# encoder scaling the whole frame for a simulcast layer, and blocks of 6 px or more survive
# lossy VP8/H.264 coding at low bit rates: a reader only looks at the middle half of each
# block and thresholds at mid-grey.
#
# Bits, most significant first: MAGIC (8) | counter (32) | capture_time_ns (64) | CRC-16 (16).
# The CRC (CCITT, poly 0x1021, init 0xFFFF) covers the 13 bytes before it, so a frame without a
# stamp, or a damaged stamp, reads as None instead of a wrong number.
COLUMNS = 24
ROWS = 5
MAGIC = 0xA5
BLACK = 16  # video-range luma
WHITE = 235
NEUTRAL_CHROMA = 128
_PAYLOAD_BYTES = 13  # magic + counter + time
_BITS = (_PAYLOAD_BYTES + 2) * 8
assert _BITS == COLUMNS * ROWS

U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a stamped frame carries."""

    counter: int
    capture_time_ns: int


def _edges(width: int, count: int) -> list[int]:
    return [(i * width) // COLUMNS for i in range(count + 1)]


def band_height(width: int) -> int:
    """Height of the stamped band at the top of a frame this wide."""
    return (ROWS * width) // COLUMNS


def fits(width: int, height: int) -> bool:
    """Whether a frame this size can carry a readable stamp (blocks of 4 px or more)."""
    return width >= 4 * COLUMNS and band_height(width) <= height


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of `data`."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _encode_bits(counter: int, capture_time_ns: int) -> list[int]:
    payload = bytes([MAGIC]) + (counter & 0xFFFFFFFF).to_bytes(4, "big")
    payload += (capture_time_ns & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
    data = payload + crc16_ccitt(payload).to_bytes(2, "big")
    return [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]


def stamp(planes: U8Array | Sequence[U8Array], counter: int, capture_time_ns: int) -> None:
    """Write the stamp into a frame in place.

    `planes` is the luma plane (2-D uint8, height x width) or the I420 planes (Y, U, V); the
    chroma of the band is set to neutral so the blocks stay black and white after conversion.
    `capture_time_ns` is `time.monotonic_ns()` (CLOCK_MONOTONIC, shared by every process on the
    host), which is what the double compares it with. Raises ValueError for a frame too small.
    """
    if isinstance(planes, np.ndarray):
        y, chroma = planes, []
    else:
        y, chroma = planes[0], list(planes[1:])
    height, width = y.shape
    if not fits(width, height):
        raise ValueError(f"frame {width}x{height} is too small for a stamp")
    bits = _encode_bits(counter, capture_time_ns)
    xs, ys = _edges(width, COLUMNS), _edges(width, ROWS)
    for index, bit in enumerate(bits):
        r, c = divmod(index, COLUMNS)
        y[ys[r] : ys[r + 1], xs[c] : xs[c + 1]] = WHITE if bit else BLACK
    for plane in chroma:
        # I420 chroma is subsampled 2x2: the band covers half the rows there.
        plane[: (ys[-1] + 1) // 2, :] = NEUTRAL_CHROMA


def stamp_i420(buffer: bytearray | memoryview, width: int, height: int, counter: int,
               capture_time_ns: int) -> None:
    """Stamp a packed I420 buffer (as in `rtc.VideoFrame.data`) in place."""
    y = np.frombuffer(buffer, dtype=np.uint8, count=width * height).reshape(height, width)
    chroma_w, chroma_h = (width + 1) // 2, (height + 1) // 2
    u = np.frombuffer(buffer, dtype=np.uint8, count=chroma_w * chroma_h,
                      offset=width * height).reshape(chroma_h, chroma_w)
    v = np.frombuffer(buffer, dtype=np.uint8, count=chroma_w * chroma_h,
                      offset=width * height + chroma_w * chroma_h).reshape(chroma_h, chroma_w)
    stamp((y, u, v), counter, capture_time_ns)


def read_stamp(y: U8Array) -> Stamp | None:
    """Read the stamp from a luma plane; None when there is none or it does not check out."""
    height, width = y.shape
    if not fits(width, height):
        return None
    xs, ys = _edges(width, COLUMNS), _edges(width, ROWS)
    bits = np.zeros(ROWS * COLUMNS, dtype=np.uint8)
    for r in range(ROWS):
        for c in range(COLUMNS):
            # Mean of the middle half of every block: edges blur under lossy coding, centres
            # do not.
            qh, qw = (ys[r + 1] - ys[r]) // 4, (xs[c + 1] - xs[c]) // 4
            block = y[ys[r] + qh : ys[r + 1] - qh, xs[c] + qw : xs[c + 1] - qw]
            bits[r * COLUMNS + c] = block.mean() > (BLACK + WHITE) / 2
    data = np.packbits(bits).tobytes()
    if data[0] != MAGIC or crc16_ccitt(data[:_PAYLOAD_BYTES]) != int.from_bytes(data[13:], "big"):
        return None
    return Stamp(
        counter=int.from_bytes(data[1:5], "big"),
        capture_time_ns=int.from_bytes(data[5:13], "big"),
    )
