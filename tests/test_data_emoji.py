"""The emoji data spec: rendered from Debian's font, grouped by emoji-test.txt, split by base emoji, refused in one
line where the packages are missing."""

import hashlib
import random
from collections import Counter

import numpy as np
import pytest
import torch

from ganforge.cli import main
from ganforge.data import emoji, list_sources, load_dataset
from ganforge.errors import DataError

needs_font = pytest.mark.skipif(
    not emoji.FONT_PATH.is_file() or not emoji.EMOJI_TEST_PATH.is_file(),
    reason=f"needs the Noto colour emoji font and unicode-data: {emoji.INSTALL}",
)
GROUPS = (
    "Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places", "Activities",
    "Objects", "Symbols", "Flags",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _shared_home(emoji_home, monkeypatch):
    """The session's emoji GANFORGE_HOME (conftest): the set is rendered once (64 px), then read from the cache."""
    monkeypatch.setenv("GANFORGE_HOME", str(emoji_home))


@pytest.fixture(scope="module")
def rendered(emoji_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANFORGE_HOME", str(emoji_home))
        return emoji.load_set(64)


def test_base_key_strips_skin_tones_and_hair():
    assert emoji.base_key((0x1F44B, 0x1F3FD)) == (0x1F44B,)  # waving hand: medium skin tone
    assert emoji.base_key((0x1F468, 0x200D, 0x1F9B0)) == (0x1F468,)  # man: red hair -> man
    assert emoji.base_key((0x1F468, 0x1F3FF, 0x200D, 0x1F9B3)) == (0x1F468,)  # man: dark skin tone, white hair
    # people holding hands, two tones -> one base
    two = (0x1F9D1, 0x1F3FB, 0x200D, 0x1F91D, 0x200D, 0x1F9D1, 0x1F3FC)
    assert emoji.base_key(two) == (0x1F9D1, 0x200D, 0x1F91D, 0x200D, 0x1F9D1)
    assert emoji.base_key((0x1F600,)) == (0x1F600,)


def test_parse_spec():
    assert emoji.parse_spec("emoji") == (None, "group")
    assert emoji.parse_spec("emoji:32") == (32, "group")
    assert emoji.parse_spec("emoji:subgroup") == (None, "subgroup")
    assert emoji.parse_spec("emoji:28:subgroup") == (28, "subgroup")
    with pytest.raises(DataError, match="'abc' is neither a size"):
        emoji.parse_spec("emoji:abc")
    with pytest.raises(DataError, match="8 to 512"):
        emoji.parse_spec("emoji:4")


@needs_font
def test_shapes_labels_and_groups(rendered):
    train = load_dataset("emoji")
    test = load_dataset("emoji", split="test")
    every = load_dataset("emoji", split="all")
    assert train.images.shape[1:] == (3, 64, 64) and train.images.dtype == torch.uint8
    assert len(every) == len(train) + len(test) == len(rendered.entries) == 3655  # Debian 12: Unicode 15.0
    assert len(test) == 367 and 0.09 < len(test) / len(every) < 0.11
    assert train.num_classes == 9 and train.class_names == GROUPS and "Component" not in train.class_names
    assert set(train.labels.tolist()) == set(range(9)) and set(test.labels.tolist()) == set(range(9))
    assert train.name == "emoji-64" and train.split == "train" and "fonts-noto-color-emoji" in train.source
    # Flattened on white: the corners of every emoji are white or nearly.
    corners = every.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners.float().mean() > 250) and (every.images.float().std() > 40)
    # The model's size wins over the spec's; subgroups as labels; grey on request.
    sub = load_dataset("emoji:subgroup", split="test")
    assert sub.num_classes == len(sub.class_names) == 99 and int(sub.labels.max()) < 99
    assert torch.equal(sub.images, test.images)
    small = load_dataset("emoji:64", split="test", image_size=32, channels=1)
    assert small.images.shape[1:] == (1, 32, 32) and small.name == "emoji-32"
    assert torch.equal(small.labels, test.labels)


@needs_font
def test_split_keeps_every_variant_of_an_emoji_on_one_side(rendered):
    sides = {}
    for e, split in zip(rendered.entries, rendered.splits, strict=True):
        assert sides.setdefault(e.base, split) == split, e.name
    test = rendered.splits == "test"
    # skin-toned variants are in both splits (as whole families), so a tone collapse is measurable on either
    assert Counter(rendered.tones()[test])[3] > 10 and Counter(rendered.tones()[~test])[3] > 100
    # stratified by group: every group gives its tenth (within a family's size) to the test split
    for g, name in enumerate(rendered.groups):
        members = rendered.labels("group") == g
        share = (test & members).sum() / members.sum()
        assert 0.07 < share < 0.13, (name, share)


@needs_font
def test_split_is_a_function_of_the_emoji_not_of_their_order(rendered):
    entries = list(rendered.entries)
    shuffled = entries[:]
    random.Random(0).shuffle(shuffled)
    again = dict(zip(shuffled, emoji.assign_splits(shuffled), strict=True))
    assert all(again[e] == s for e, s in zip(entries, rendered.splits, strict=True))
    other_salt = emoji.assign_splits(entries, salt="another")
    assert (other_salt != rendered.splits).sum() > 100  # the salt, not the order, decides


@needs_font
def test_rendering_is_deterministic_and_cached(rendered, monkeypatch):
    some = rendered.entries[::100]
    assert np.array_equal(emoji._render(some, 64), rendered.images[::100])

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again instead of reading the cache")

    monkeypatch.setattr(emoji, "_render", no_render)
    cached = emoji.load_set(64)
    assert np.array_equal(cached.images, rendered.images)
    identity = cached.identity
    assert identity["font_sha256"] == hashlib.sha256(emoji.FONT_PATH.read_bytes()).hexdigest()
    assert identity["images_sha256"] == hashlib.sha256(rendered.images.tobytes()).hexdigest()
    assert identity["font"].startswith("fonts-noto-color-emoji")
    assert load_dataset("emoji", split="test").identity == identity


@needs_font
def test_a_damaged_cache_is_rendered_again(rendered, monkeypatch, caplog):
    path = next((emoji.cache_dir() / "emoji").glob("emoji-64-*.safetensors"))
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one pixel
    path.write_bytes(bytes(data))
    calls = []

    def render(entries, size):  # stands in for the 2 s render: returns the right pixels, and counts
        calls.append(size)
        return rendered.images.copy()

    monkeypatch.setattr(emoji, "_render", render)
    again = emoji.load_set(64)
    assert calls == [64] and np.array_equal(again.images, rendered.images)
    assert "does not match" in caplog.text
    monkeypatch.undo()
    assert np.array_equal(emoji.load_set(64).images, rendered.images)  # and the rewritten cache is good


def test_missing_font_is_one_line_naming_the_packages(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(emoji, "FONT_PATH", tmp_path / "NotoColorEmoji.ttf")
    with pytest.raises(DataError, match="apt-get install fonts-noto-color-emoji unicode-data"):
        load_dataset("emoji")
    code = main(["train", "--data", "emoji", "--arch", "dcgan", "--image-size", "64", "--channels", "3",
                 "--steps", "1", "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("ganforge: error:") and "apt-get install fonts-noto-color-emoji" in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "run").exists()
    row = next(r for r in list_sources() if r["spec"].startswith("emoji"))
    assert "apt-get install fonts-noto-color-emoji unicode-data" in row["found"]


def test_missing_emoji_list_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(emoji, "EMOJI_TEST_PATH", tmp_path / "emoji-test.txt")
    with pytest.raises(DataError, match=r"emoji-test\.txt.*apt-get install"):
        load_dataset("emoji", split="test")


@needs_font
def test_the_emoji_64_preset_trains_on_the_emoji_and_eval_scores_it_against_either_split(rendered, tmp_path, capsys):
    """Issue 26 part 3: a short run of the preset, reduced (width 8, batch 8, 2 steps), on the real training split."""
    import dataclasses
    import json

    from ganforge.checkpoint import load_generator
    from ganforge.presets import PRESETS
    from ganforge.train import train

    preset = PRESETS["emoji-64"]
    cfg = dataclasses.replace(
        preset, model=dataclasses.replace(preset.model, width=8), steps=2, batch_size=8, log_every=1,
        checkpoint_every=2, sample_every=0, check_every=0, device="cpu", out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    assert train(cfg).step == 2
    G = load_generator(tmp_path / "run")
    train_groups = Counter(load_dataset("emoji").labels.tolist())
    assert G.provenance["class_counts"] == [train_groups[k] for k in range(9)]  # 1,931 People & Body ...
    results = {}
    for split in ("test", "train"):
        out = tmp_path / f"{split}.json"
        args = ["eval", str(tmp_path / "run"), "--n", "40", "--reference-split", split, "--json", str(out)]
        assert main(args) == 0
        results[split] = json.loads(out.read_text())
    assert results["test"]["reference"]["split"] == "test" and results["test"]["reference"]["count"] == 367
    assert results["train"]["reference"]["split"] == "train" and results["train"]["reference"]["count"] == 3288
    assert results["train"]["extractor"]["name"] == "emoji" and results["train"]["fid"] != results["test"]["fid"]
    assert "vs emoji-64 train (3,288)" in capsys.readouterr().out
