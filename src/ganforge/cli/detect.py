"""`ganforge detect`: for image files and folders, the keyed watermark and the passive detector's verdict."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganforge.errors import ConfigError

DESCRIPTION = """Check whether images were generated, and by which model. For every PNG, JPEG or WebP file
(folders are searched): the keyed watermark (found or not, bit accuracy, payload, p-value of the bit matches
if the image were not marked), when a key is available (--key-file, else $GANFORGE_KEY_FILE, else your
per-user key), and a passive detector's score in [0, 1] with its verdict at the detector's threshold (no key
needed; it reads grey 28x28 images: others are converted to grey and resized first, which it was not trained
on). --generators names the generator file whose payload a found mark carries. Unreadable files are listed.

  ganforge detect samples/ --json result.json
  ganforge detect image.png --key-file ~/.config/ganforge/key --generators runs/*/generator.safetensors
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect", help="is an image generated, and by which model? (watermark and detector)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files and folders")
    parser.add_argument(
        "--key-file", metavar="FILE", help="the watermark key (default: $GANFORGE_KEY_FILE, else yours)"
    )
    parser.add_argument("--no-watermark", action="store_true", help="skip the watermark: run the detector only")
    parser.add_argument("--json", metavar="OUT", help="also write the results as a JSON list to this file")
    parser.add_argument("--generators", nargs="+", default=[], metavar="FILE",
                        help="generator files (or run folders) to name when a payload matches one")  # fmt: skip
    parser.add_argument("--detector", metavar="FILE", help="a detector file from `ganforge detector train`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.no_watermark and (args.key_file or args.generators):
        raise ConfigError("--no-watermark skips the mark, so --key-file and --generators do nothing; drop one")
    json_path = None
    if args.json is not None:
        json_path = Path(args.json)
        if json_path.is_dir() or args.json.endswith("/"):
            raise ConfigError(f"--json {args.json} is a folder; pass a file name such as {json_path / 'detect.json'}")
    for generator in args.generators:
        if not Path(generator).exists():
            raise ConfigError(f"--generators {generator} does not exist; pass generator files or run folders")

    import importlib

    from ganforge.detect import detect, format_table, json_text
    from ganforge.detector import load_detector
    from ganforge.io import write_text_atomic

    # 1. The key (when there is one) and the detector, before reading any image.
    key = key_path = None
    if not args.no_watermark:  # a key made now would find no mark: detect never makes one
        found = importlib.import_module("ganforge.watermark").existing_key(args.key_file)
        if found is None:
            print(
                "watermark not checked: no key (pass --key-file FILE or set GANFORGE_KEY_FILE; ganforge makes your "
                "per-user key the first time it writes images)"
            )
        else:
            key, key_path = found
    detector = load_detector(args.detector)

    # 2. Every image, then the table and the JSON.
    report = detect(args.paths, key=key, key_path=key_path, detector=detector, generators=args.generators)
    print(format_table(report))
    if key_path is not None:
        print(f"watermark key: {key_path}")
    if json_path is not None:
        write_text_atomic(json_path, json_text(report))
        print(f"wrote {json_path}")
    return 0
