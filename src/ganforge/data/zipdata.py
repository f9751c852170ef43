"""stylegan2-ada's dataset zips: `00000/img00000000.png` members and a dataset.json with "labels"; read and write."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from ganforge.decoding import EXTENSIONS, png_bytes  # noqa: F401  # png_bytes: part of this format
from ganforge.errors import DataError

META = "dataset.json"


def member_name(index: int) -> str:
    """Image `index`'s name in the zip, as stylegan2-ada's dataset_tool writes it: 1,000 a folder."""
    digits = f"{index:08d}"
    return f"{digits[:5]}/img{digits}.png"


def read_index(path: Path) -> tuple[list[str], list[int] | None, tuple[str, ...], dict[str, Any]]:
    """(image members in sorted order, their labels or None, class names, dataset.json) of a dataset zip.

    Refuses a zip without images, labels that are not one integer an image, and labels whose count or names
    do not match the images.
    """
    if not path.is_file():
        raise DataError(f"zip file {path} does not exist; pass a dataset zip, e.g. zip:./faces.zip")
    try:
        with zipfile.ZipFile(path) as archive:
            names = sorted(
                n for n in archive.namelist() if not n.endswith("/") and Path(n).suffix.lower() in EXTENSIONS
            )
            meta: dict[str, Any] = json.loads(archive.read(META)) if META in archive.namelist() else {}
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path} is not a readable zip file ({e}); pass a dataset zip") from None
    except ValueError as e:
        raise DataError(f"{path}: its {META} is not valid JSON ({e}); fix or remove it") from None
    if not names:
        raise DataError(f"no images in zip {path} (looked for {', '.join(EXTENSIONS)}); pass a zip of images")
    raw = meta.get("labels")
    if raw is None:
        return names, None, (), meta
    if not isinstance(raw, list) or not all(isinstance(r, list) and len(r) == 2 for r in raw):
        raise DataError(f"{path}: {META} 'labels' must be a list of [file name, class] pairs or null")
    if len(raw) != len(names):
        raise DataError(
            f"{path}: {META} has {len(raw):,} labels for {len(names):,} images; "
            "give every image one label (or set 'labels' to null)"
        )
    by_name = {str(name).replace("\\", "/"): label for name, label in raw}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise DataError(
            f"{path}: {META} has no label for {missing[0]} ({len(missing)} images unlabeled); fix its labels"
        )
    labels = [by_name[n] for n in names]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in labels):
        raise DataError(f"{path}: {META} labels must be class numbers 0, 1, ...; ganforge takes no vector labels")
    extra = meta.get("ganforge") or {}
    count = max(labels) + 1
    names_given = extra.get("class_names") or []
    classes = tuple(str(c) for c in names_given) if len(names_given) == count else tuple(str(k) for k in range(count))
    return names, labels, classes, meta
