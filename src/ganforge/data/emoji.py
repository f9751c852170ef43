"""The Noto colour emoji as a data set: rendered from the installed font, grouped by Unicode's emoji-test.txt."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ganforge.data.mnist import cache_dir
from ganforge.errors import DataError
from ganforge.io import atomic_path, file_digest

log = logging.getLogger(__name__)

SPEC = "emoji"
FONT_PATH = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # Debian's fonts-noto-color-emoji
EMOJI_TEST_PATH = Path("/usr/share/unicode/emoji/emoji-test.txt")  # Debian's unicode-data
INSTALL = "apt-get install fonts-noto-color-emoji unicode-data"
FONT_SIZE = 109  # the font's one bitmap strike (CBDT): every glyph is a 136x128 colour bitmap
GLYPH_BOX = (4, 0, 132, 128)  # the square that holds every glyph's pixels (measured on all 3,655): no scaling
GLYPH_SIDE = 128
DEFAULT_SIZE = 64
MIN_SIZE, MAX_SIZE = 8, 512
CACHE_MAX_SIZE = 128  # rendered sets up to this side are cached (64 px: 45 MB); larger ones render each time
SKIN_TONES = range(0x1F3FB, 0x1F400)  # light .. dark skin tone modifiers
HAIR = range(0x1F9B0, 0x1F9B4)  # red, curly, white hair, bald
ZWJ = 0x200D
COMPONENT = "Component"  # emoji-test.txt's group of bare modifiers: not emoji of their own
LABELS = ("group", "subgroup")
SPLIT_SALT = "ganforge-emoji-split-v1"  # changing it changes the test split, and so every documented figure
TEST_SHARE = 0.1
CACHE_FORMAT = "ganforge.emoji-render.v1"
# The files the documented figures (docs/colour.md) were measured on: Debian 12's packages.
MEASURED_FONT = "fonts-noto-color-emoji 2.042-0+deb12u1"
MEASURED_FONT_SHA256 = "e5899ed38b8ed83e08bd3ac5de09791e9d19d288333a796de1d35ad17396f1ec"


@dataclass(frozen=True)
class Emoji:
    """One fully-qualified emoji of emoji-test.txt."""

    codepoints: tuple[int, ...]
    name: str
    group: str
    subgroup: str

    @property
    def text(self) -> str:
        return "".join(map(chr, self.codepoints))

    @property
    def base(self) -> tuple[int, ...]:
        """The code points without skin tones and hair styles: the key that keeps variants together."""
        return base_key(self.codepoints)

    @property
    def tone(self) -> int:
        """0 without a skin tone, else 1 (light) .. 5 (dark): the first skin tone modifier."""
        return next((cp - SKIN_TONES.start + 1 for cp in self.codepoints if cp in SKIN_TONES), 0)


@dataclass
class EmojiSet:
    """The rendered set: images (N, 3, S, S) uint8 on white, the entries, and each one's split."""

    entries: list[Emoji]
    images: np.ndarray
    splits: np.ndarray  # (N,) "train" or "test"
    groups: tuple[str, ...]
    subgroups: tuple[str, ...]
    identity: dict[str, str]

    def labels(self, kind: str = "group") -> np.ndarray:
        """(N,) int64 index of each emoji's group (or subgroup) in `groups` (`subgroups`)."""
        names = self.groups if kind == "group" else self.subgroups
        index = {name: k for k, name in enumerate(names)}
        return np.array([index[getattr(e, kind)] for e in self.entries], dtype=np.int64)

    def tones(self) -> np.ndarray:
        return np.array([e.tone for e in self.entries], dtype=np.int64)

    def mask(self, split: str) -> np.ndarray:
        return np.ones(len(self.entries), bool) if split == "all" else self.splits == split


def base_key(codepoints: tuple[int, ...]) -> tuple[int, ...]:
    """Drop skin tone modifiers, and hair components with the joiner before them (man: red hair -> man)."""
    out: list[int] = []
    for cp in codepoints:
        if cp in SKIN_TONES:
            continue
        if cp in HAIR:
            if out and out[-1] == ZWJ:
                out.pop()
            continue
        out.append(cp)
    return tuple(out)


def check_installed() -> None:
    """One line naming what to install when the font or emoji-test.txt is missing."""
    missing = [str(p) for p in (FONT_PATH, EMOJI_TEST_PATH) if not Path(p).is_file()]
    if missing:
        which = "which is" if len(missing) == 1 else "which are"
        raise DataError(f"the emoji data set needs {' and '.join(missing)}, {which} missing; run `{INSTALL}`")


def parse_emoji_test(path: Path) -> list[Emoji]:
    """The fully-qualified emoji of an emoji-test.txt, in its order; components are not emoji of their own."""
    entries: list[Emoji] = []
    group = subgroup = ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("# group:"):
                group = line.split(":", 1)[1].strip()
            elif line.startswith("# subgroup:"):
                subgroup = line.split(":", 1)[1].strip()
            elif line.strip() and not line.startswith("#"):
                fields, _, comment = line.partition("#")
                points, _, status = fields.partition(";")
                if status.strip() != "fully-qualified" or group == COMPONENT:
                    continue
                # comment: " 😀 E1.0 grinning face"
                name = comment.strip().split(" ", 2)[-1]
                entries.append(Emoji(tuple(int(p, 16) for p in points.split()), name, group, subgroup))
    if not entries:
        raise DataError(f"{path} lists no fully-qualified emoji; reinstall unicode-data (`{INSTALL}`)")
    return entries


def assign_splits(entries: list[Emoji], *, test_share: float = TEST_SHARE, salt: str = SPLIT_SALT) -> np.ndarray:
    """(N,) "train"/"test": whole base emoji (all their tones and hair styles) go to one side, by a seeded hash.

    Stratified by group: within each group the bases are taken in the order of sha256(salt, base), each one
    joining the test split when it brings the group's test count closer to test_share of the group's emoji.
    """
    by_group: dict[str, dict[tuple[int, ...], list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, e in enumerate(entries):
        by_group[e.group][e.base].append(i)
    splits = np.full(len(entries), "train", dtype=object)
    for bases in by_group.values():
        target = test_share * sum(len(members) for members in bases.values())
        count = 0

        def order(base: tuple[int, ...]) -> str:
            return hashlib.sha256(f"{salt}:{' '.join(f'{cp:X}' for cp in base)}".encode()).hexdigest()

        for base in sorted(bases, key=order):
            members = bases[base]
            if abs(count + len(members) - target) < abs(count - target):
                splits[members] = "test"
                count += len(members)
    return splits.astype(str)


def _render(entries: list[Emoji], size: int) -> np.ndarray:
    """(N, 3, size, size) uint8: each glyph's 128x128 square, composited on white, Lanczos-resized to size."""
    font = ImageFont.truetype(str(FONT_PATH), FONT_SIZE)
    out = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    missing = []
    for i, e in enumerate(entries):
        left, top, right, bottom = font.getbbox(e.text)
        if right - left > GLYPH_BOX[2] + GLYPH_BOX[0]:  # no single glyph: the font predates this emoji
            missing.append(e.name)
        glyph = Image.new("RGBA", (int(right), int(bottom)), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((0, 0), e.text, font=font, embedded_color=True)
        square = Image.new("RGBA", (GLYPH_SIDE, GLYPH_SIDE), (255, 255, 255, 255))
        square.alpha_composite(glyph.crop(GLYPH_BOX))
        rgb = square.convert("RGB")
        if size != GLYPH_SIDE:
            rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
        out[i] = np.asarray(rgb)
    if missing:
        log.warning(
            "%d emoji of %s are not single glyphs in %s (e.g. %s); the font is older than the emoji list",
            len(missing), EMOJI_TEST_PATH, FONT_PATH, missing[0],
        )  # fmt: skip
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def package_version(package: str) -> str:
    """The installed Debian package's version, or "unknown" (no dpkg, or not installed by it)."""
    try:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def _cache_path(key: str, size: int) -> Path:
    return cache_dir() / "emoji" / f"emoji-{size}-{key[:16]}.safetensors"


def _read_cache(path: Path, key: str) -> tuple[np.ndarray, dict[str, str]] | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = dict(f.metadata() or {})
            images = f.get_tensor("images")
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        log.warning("emoji cache %s is unreadable (%s); rendering again", path, e)
        return None
    if metadata.get("key") != key or hashlib.sha256(images.tobytes()).hexdigest() != metadata.get("images_sha256"):
        log.warning("emoji cache %s does not match the installed font; rendering again", path)
        return None
    return images, json.loads(metadata["identity"])


def load_set(size: int = DEFAULT_SIZE, *, use_cache: bool = True) -> EmojiSet:
    """Render (or read from the cache) every fully-qualified emoji at size x size, with groups and the split.

    Example:
        >>> s = load_set(64)
        >>> s.images.shape, s.groups[0], int((s.splits == "test").sum())
        ((3655, 3, 64, 64), 'Smileys & Emotion', 365)
    """
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"emoji size must be {MIN_SIZE} to {MAX_SIZE} pixels; got {size}")
    check_installed()
    entries = parse_emoji_test(EMOJI_TEST_PATH)
    font_sha, test_sha = file_digest(FONT_PATH), file_digest(EMOJI_TEST_PATH)
    key = hashlib.sha256(
        json.dumps([CACHE_FORMAT, font_sha, test_sha, size, PIL.__version__, FONT_SIZE, GLYPH_BOX]).encode()
    ).hexdigest()
    path = _cache_path(key, size)
    cached = _read_cache(path, key) if use_cache and size <= CACHE_MAX_SIZE else None
    if cached is not None and len(cached[0]) == len(entries):
        images, identity = cached
    else:
        log.info("rendering %d emoji at %dx%d from %s", len(entries), size, size, FONT_PATH)
        images = _render(entries, size)
        identity = {
            "font": f"fonts-noto-color-emoji {package_version('fonts-noto-color-emoji')}",
            "font_sha256": font_sha,
            "emoji_test": f"unicode-data {package_version('unicode-data')}",
            "emoji_test_sha256": test_sha,
            "pillow": PIL.__version__,
            "images_sha256": hashlib.sha256(images.tobytes()).hexdigest(),
        }
        if use_cache and size <= CACHE_MAX_SIZE:
            metadata = {"format": CACHE_FORMAT, "key": key, "images_sha256": identity["images_sha256"]}
            try:
                with atomic_path(path) as tmp:
                    save_file({"images": images}, str(tmp), metadata={**metadata, "identity": json.dumps(identity)})
            except OSError as e:  # a read-only home still loads, just without the cache
                log.warning("could not cache the rendered emoji: %s", e)
    if font_sha != MEASURED_FONT_SHA256:
        log.info("the emoji font differs from the one docs/colour.md was measured on (%s)", MEASURED_FONT)
    groups = tuple(dict.fromkeys(e.group for e in entries))
    subgroups = tuple(dict.fromkeys(e.subgroup for e in entries))
    return EmojiSet(entries, images, assign_splits(entries), groups, subgroups, identity)


def parse_spec(spec: str) -> tuple[int | None, str]:
    """`emoji[:SIZE][:subgroup]` -> (size or None, label kind "group" or "subgroup")."""
    size: int | None = None
    labels = "group"
    for part in spec.split(":")[1:]:
        if part.isdigit() and size is None:
            size = int(part)
        elif part in LABELS:
            labels = part
        else:
            raise DataError(
                f"cannot read {spec!r}: {part!r} is neither a size nor a label kind; "
                "write emoji, emoji:SIZE (e.g. emoji:32), emoji:subgroup or emoji:32:subgroup"
            )
    if size is not None and not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"{spec!r}: emoji size must be {MIN_SIZE} to {MAX_SIZE} pixels; got {size}")
    return size, labels
