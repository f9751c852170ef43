"""`detect`: is an image generated, and by which model? The keyed watermark and the passive detector, per file.

Reads PNG, JPEG and WebP files (folders are searched recursively), decodes the watermark with a key when one is
available, and scores every image with a passive detector. Unreadable files are counted and listed, never raised.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ganforge.errors import ConfigError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_PIXELS = 50_000_000  # larger files are refused as unreadable rather than decoded (a decompression bomb)


@dataclass
class Record:
    """One image's result: `watermark` is None without a key; `generator` names the file whose payload matched."""

    path: str
    width: int
    height: int
    mode: str
    score: float
    generated: bool
    watermark: Any | None = None  # a ganforge.watermark.Reading
    generator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """{"path", "size", "mode", "watermark": {...}, "detector": {...}, "generator"}: the --json object."""
        mark: dict[str, Any] = dict.fromkeys(("found", "bit_accuracy", "payload", "p_value", "n_bits"))
        mark["checked"] = self.watermark is not None  # False: no key, so found and the rest are null
        if self.watermark is not None:
            w = self.watermark
            mark.update(found=bool(w.found), bit_accuracy=float(w.bit_accuracy), payload=str(w.payload),
                        p_value=float(w.p_value), n_bits=int(w.n_bits))  # fmt: skip
        return {
            "path": self.path,
            "size": [self.width, self.height],
            "mode": self.mode,
            "watermark": mark,
            "detector": {"score": round(self.score, 6), "generated": self.generated},
            "generator": self.generator,
        }


@dataclass
class Report:
    """Every image's record, the files that could not be read (path, reason), and the detector used."""

    records: list[Record] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    watermark_checked: bool = False  # a key was given
    key_path: str | None = None
    detector_sha256: str = ""
    threshold: float = 0.5

    def to_json(self) -> list[dict[str, Any]]:
        """A list with one object per image; unreadable files follow with their "error" and null results."""
        out = [r.to_dict() for r in self.records]
        out += [{"path": p, "error": reason, "watermark": None, "detector": None} for p, reason in self.unreadable]
        return out


def collect(paths: Sequence[str | Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to read (each named file, and the images under each folder, sorted) and the paths that do not exist."""
    if not paths:
        raise ConfigError("no images given; pass image files or folders")
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            missing.append((str(path), "no such file or folder"))
    return files, missing


def read_pixels(path: Path) -> tuple[np.ndarray, str]:
    """A file's pixels as uint8 (H, W) for grey images or (H, W, 3), and the file's own mode (raises ValueError)."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ValueError(f"{image.width}x{image.height} is over {MAX_PIXELS:,} pixels")
            mode = image.mode
            image.load()
            if mode in ("L", "1", "I", "I;16", "F", "LA"):
                converted = image.convert("L")
            else:
                converted = image.convert("RGB")  # palette, RGBA, CMYK, YCbCr ...: drop alpha
            return np.asarray(converted, dtype=np.uint8), mode
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ValueError(
            f"not a readable image ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from e


def generator_payloads(files: Iterable[str | Path], n_bits: int) -> dict[str, str]:
    """payload hex -> generator file, for each generator file (or run folder) as the watermark names it."""
    from ganforge.checkpoint import resolve_generator_path

    watermark = _watermark()

    out = {}
    for raw in files:
        path = resolve_generator_path(raw)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out[bits_hex(watermark.payload_bits(digest, n_bits))] = str(raw)
    return out


def _watermark() -> ModuleType:
    """ganforge.watermark, imported when a key is used (by name: the keyed mark lives in its own module)."""
    return importlib.import_module("ganforge.watermark")


def bits_hex(bits: np.ndarray) -> str:
    """0/1 bits, most significant first, as hex (numpy's packbits order)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8).reshape(-1)).tobytes().hex()


def detect(
    paths: Sequence[str | Path],
    *,
    key: bytes | None = None,
    key_path: str | Path | None = None,
    detector: Any | None = None,
    generators: Sequence[str | Path] = (),
    batch_size: int = 256,
) -> Report:
    """Check every image under `paths`: the watermark (with `key`) and the passive detector's score and verdict.

    Example:
        >>> report = ganforge.detect.detect(["samples/"], key=key)
        >>> [(r.path, r.generated) for r in report.records]
    """
    from ganforge.detector import load_detector, score

    detector = detector or load_detector()
    files, unreadable = collect(paths)
    report = Report(unreadable=list(unreadable), watermark_checked=key is not None,
                    key_path=None if key_path is None else str(key_path),
                    detector_sha256=detector.sha256, threshold=detector.threshold)  # fmt: skip
    payloads: dict[int, dict[str, str]] = {}
    for start in range(0, len(files), batch_size):
        read: list[tuple[Path, np.ndarray, str]] = []
        for path in files[start : start + batch_size]:
            try:
                pixels, mode = read_pixels(path)
            except ValueError as e:
                report.unreadable.append((str(path), str(e)))
                continue
            read.append((path, pixels, mode))
        if not read:
            continue
        scores = score([pixels for _, pixels, _ in read], detector)
        for (path, pixels, mode), p in zip(read, scores, strict=True):
            record = Record(str(path), pixels.shape[1], pixels.shape[0], mode, float(p), bool(p > detector.threshold))
            if key is not None:
                record.watermark = _watermark().decode(pixels, key)
                if generators and record.watermark.found:
                    n_bits = int(record.watermark.n_bits)
                    if n_bits not in payloads:
                        payloads[n_bits] = generator_payloads(generators, n_bits)
                    record.generator = payloads[n_bits].get(str(record.watermark.payload).lower())
            report.records.append(record)
    return report


def format_table(report: Report) -> str:
    """One row per image, the unreadable files, and a summary line."""
    rows = [f"{'path':<40} {'size':>9} {'mark':>5} {'bits':>6} {'payload':<16} {'score':>6} {'verdict':<9} generator"]
    for r in report.records:
        w = r.watermark
        mark = "-" if w is None else ("yes" if w.found else "no")
        bits = "-" if w is None else f"{w.bit_accuracy:.3f}"
        payload = "-" if w is None or not w.found else str(w.payload)[:16]
        verdict = "generated" if r.generated else "real"
        rows.append(f"{_short(r.path, 40):<40} {f'{r.width}x{r.height}':>9} {mark:>5} {bits:>6} {payload:<16} "
                    f"{r.score:>6.3f} {verdict:<9} {r.generator or '-'}")  # fmt: skip
    for path, reason in report.unreadable:
        rows.append(f"{_short(path, 40):<40} unreadable: {reason}")
    n = len(report.records)
    marked = sum(1 for r in report.records if r.watermark is not None and r.watermark.found)
    flagged = sum(r.generated for r in report.records)
    mark_part = f"{marked} with the watermark" if report.watermark_checked else "watermark not checked (no key)"
    rows.append(f"{n} image{'s' * (n != 1)}: {mark_part}; {flagged} flagged generated by the detector "
                f"(threshold {report.threshold:.3f}); {len(report.unreadable)} unreadable")  # fmt: skip
    return "\n".join(rows)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def json_text(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2) + "\n"
