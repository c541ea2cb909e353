"""Audio files read as model input: decoded with ``soundfile`` (libsndfile: WAV, FLAC, OGG/Opus,
MP3 where the installed libsndfile has it), mixed down to mono, cut to a length and resampled
to the model's rate; and what the doctor, the baseline and the report read from them.

Tables of audio hold paths, or the files' bytes (:mod:`tunelab.data.media`); clips are decoded
a batch at a time by the task's data loader, never a whole set at once.
"""

from __future__ import annotations

import base64
import io
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.data.media import MediaRef, UnreadableFile
from tunelab.errors import UserError

AUDIO_COLUMN = "audio"  # the path column of an audio folder (tunelab.data.media)
CLIP_LEVEL = 0.999  # a sample this close to full scale counts as at the rail
CLIPPED_SHARE = 0.005  # a clip with this share of its samples stuck at the rail is clipped
SILENT_RMS = 10 ** (-60 / 20)  # below -60 dBFS a clip holds no usable sound
MFCC_COEFFICIENTS = 20
MFCC_SEGMENTS = 3  # the baseline also averages each third of a clip: word order matters a bit


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError:
        raise UserError(
            "reading audio needs the soundfile package; install it with "
            "pip install 'tunelab[audio]'"
        ) from None
    except OSError:  # the wheel found no libsndfile on this machine
        raise UserError(
            "soundfile is installed but libsndfile is not; install it (Debian: apt-get install "
            "libsndfile1) or reinstall soundfile from a wheel that bundles it"
        ) from None
    return soundfile


def _wav_shortfall(path: Path | bytes) -> str | None:
    """Why a RIFF/WAVE file (or its bytes) is cut short (its ``data`` chunk declares more
    bytes than follow), or None; libsndfile reads such a file without a word, up to where it
    ends."""
    size = len(path) if isinstance(path, bytes) else path.stat().st_size
    with _opened(path) as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                present = size - handle.tell()
                # streaming writers leave the length 0 or 0xFFFFFFFF: nothing is promised then
                if 0 < length < 0xFFFFFFFF and present < length:
                    return (
                        f"truncated: holds {present:,} of the {length:,} bytes of samples its "
                        "header declares"
                    )
                return None
            handle.seek(length + (length & 1), 1)


def _opened(path: Path | bytes) -> Any:
    """The file, or its bytes, open for reading as binary."""
    return io.BytesIO(path) if isinstance(path, bytes) else path.open("rb")


def _source(path: MediaRef | Path) -> Path | bytes:
    """A path as a ``Path``; the bytes of a file (a table or an upload holds them) as bytes."""
    return bytes(path) if isinstance(path, (bytes, bytearray)) else Path(path)


def _readable(path: Path | bytes) -> Any:
    """What soundfile reads: the path as a string, or the bytes as a file object."""
    return io.BytesIO(path) if isinstance(path, bytes) else str(path)


def _decoded(path: Path | bytes) -> tuple[np.ndarray, int]:
    """The samples ``(frames, channels)`` as float32 in [-1, 1] and the file's rate.

    Raises:
        UnreadableFile: for a missing, empty, truncated, corrupt or sample-less file.
    """
    soundfile = _soundfile()
    if isinstance(path, Path) and not path.is_file():
        raise UnreadableFile("no such file")
    if (len(path) if isinstance(path, bytes) else path.stat().st_size) == 0:
        raise UnreadableFile("empty file (0 bytes)")
    shortfall = _wav_shortfall(path)
    if shortfall:
        raise UnreadableFile(shortfall)
    try:
        declared = soundfile.info(_readable(path)).frames
        data, rate = soundfile.read(_readable(path), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, ValueError, EOFError) as error:
        # libsndfile's messages begin with "Error opening '<path>': "; the path is named anyway
        why = str(error).split(": ", 1)[-1].split("\n")[0].strip().rstrip(".")
        why = why or type(error).__name__
        raise UnreadableFile(why) from None
    if not len(data):
        raise UnreadableFile("holds no samples")
    # an MP3's header only estimates its length: a few frames short is no damage
    if len(data) < 0.98 * declared:
        raise UnreadableFile(
            f"truncated: decodes to {len(data):,} of the {declared:,} frames its header declares"
        )
    return data, int(rate)


def mono(samples: np.ndarray) -> np.ndarray:
    """Channels ``(frames, channels)`` mixed down to one by their mean; 1-D input is kept."""
    return samples if samples.ndim == 1 else samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` at ``rate`` Hz resampled to ``target`` Hz (polyphase filtering, as
    ``scipy.signal.resample_poly``: anti-aliased, ``len * target / rate`` samples)."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    common = math.gcd(rate, target)
    return resample_poly(samples, target // common, rate // common).astype(np.float32)


def read_audio(
    path: MediaRef | Path, sampling_rate: int | None = None, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """The clip at ``path`` (or in these bytes) as mono float32 samples, cut to its first
    ``max_seconds`` and resampled to ``sampling_rate`` (the model's).

    Returns:
        The samples and their rate (``sampling_rate``, or the file's when None).

    Raises:
        UnreadableFile: for a missing, empty, truncated or corrupt file.
        UserError: if soundfile is not installed.
    """
    data, rate = _decoded(_source(path))
    if max_seconds is not None:
        data = data[: max(1, round(max_seconds * rate))]  # cut first: less to resample
    samples = mono(data)
    target = sampling_rate or rate
    return resample(samples, rate, target), target


def audio_seconds(path: MediaRef | Path) -> float:
    """The clip's length in seconds from its header alone (0 if it cannot be read)."""
    soundfile = _soundfile()
    try:
        return float(soundfile.info(_readable(_source(path))).duration)
    except (soundfile.SoundFileError, RuntimeError, ValueError, EOFError):
        return 0.0


def inspect_audio(path: MediaRef | Path) -> dict[str, Any]:
    """What the doctor measures of a clip, decoding it fully: duration, sample rate, channels,
    loudness (RMS, dBFS) and the share of samples stuck at full scale (clipping).

    Raises:
        UnreadableFile: for a missing, empty, truncated or corrupt file.
    """
    data, rate = _decoded(_source(path))
    samples = mono(data)
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    at_rail = np.abs(data) >= CLIP_LEVEL
    # clipping flattens the wave at the rail for several samples in a row; a full-scale peak
    # touches it for one or two
    stuck = at_rail[1:-1] & at_rail[:-2] & at_rail[2:]
    return {
        "seconds": len(data) / rate,
        "sampling_rate": rate,
        "channels": int(data.shape[1]),
        "rms": rms,
        "clipped_share": float(stuck.mean()) if stuck.size else 0.0,
    }


def mfcc(samples: np.ndarray, rate: int, coefficients: int = MFCC_COEFFICIENTS) -> np.ndarray:
    """Mel-frequency cepstral coefficients ``(frames, coefficients)``: 25 ms Hann frames every
    10 ms, a 40-band HTK mel filter bank on the power spectrum, log, DCT-II (orthonormal)."""
    from scipy.fft import dct
    from transformers.audio_utils import mel_filter_bank

    window, hop = round(0.025 * rate), round(0.010 * rate)
    n_fft = 1 << (window - 1).bit_length()
    if len(samples) < window:
        samples = np.pad(samples, (0, window - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(window), n=n_fft)) ** 2
    filters = mel_filter_bank(
        num_frequency_bins=n_fft // 2 + 1, num_mel_filters=40, min_frequency=20.0,
        max_frequency=rate / 2, sampling_rate=rate, mel_scale="htk",
    )  # fmt: skip
    log_mel = np.log(power @ filters + 1e-10)
    return dct(log_mel, type=2, norm="ortho", axis=-1)[:, :coefficients].astype(np.float32)


def mfcc_summary(samples: np.ndarray, rate: int) -> np.ndarray:
    """One vector per clip: the mean and standard deviation of each MFCC over the clip, and
    its mean over each third (``5 * 20`` values)."""
    coefficients = mfcc(samples, rate)
    thirds = np.array_split(coefficients, MFCC_SEGMENTS)
    parts = [coefficients.mean(axis=0), coefficients.std(axis=0)]
    parts += [part.mean(axis=0) if len(part) else parts[0] for part in thirds]
    return np.concatenate(parts)


def wav_data_uri(path: MediaRef | Path, rate: int = 8000, max_seconds: float = 4.0) -> str | None:
    """The clip's first ``max_seconds`` at ``rate`` Hz as a 16-bit WAV ``data:`` URI, so a
    report plays it offline and after the file moves; None if it cannot be read any more."""
    try:
        samples, _ = read_audio(path, rate, max_seconds)
    except (UnreadableFile, UserError):
        return None
    buffer = io.BytesIO()
    _soundfile().write(buffer, np.clip(samples, -1, 1), rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
