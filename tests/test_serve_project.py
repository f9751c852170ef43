"""POST /v1/project: an uploaded image gives a latent, a class and a reconstruction; bad images are JSON 4xx."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from ganforge.checkpoint import load_generator, save_generator  # noqa: E402
from ganforge.config import ModelConfig  # noqa: E402
from ganforge.models import build_generator  # noqa: E402
from ganforge.sample import generate, latents  # noqa: E402
from ganforge.serve import make_app  # noqa: E402


def _load(folder, num_classes=0, image_size=8, channels=1):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=image_size, channels=channels, z_dim=6, width=16, num_classes=num_classes)
    path = folder / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "test", "step": 1, "data": "mnist", "seed": 0})
    return load_generator(path)


@pytest.fixture(scope="module")
def G(tmp_path_factory):
    return _load(tmp_path_factory.mktemp("g"))


@pytest.fixture(scope="module")
def client(G):
    with TestClient(make_app(G, max_image_bytes=4096, max_project_steps=40)) as c:
        yield c


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _decode(b64: str) -> tuple[np.ndarray, dict[str, str]]:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        im.load()
        return np.asarray(im), dict(im.text)


def test_project_returns_latent_class_and_reconstruction(client, G):
    target = generate(G, latents(1, 6, seed=42))
    pixels = ((target[0, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    body = {"image": base64.b64encode(_png(pixels)).decode(), "steps": 40, "seed": 3}
    r = client.post("/v1/project", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert len(data["latent"]) == 6 and data["class"] is None and data["extractor"] is None
    image, text = _decode(data["image"])
    assert image.shape == (8, 8)
    assert text["ganforge:generator_sha256"] == G.sha256 and text["ganforge:synthetic"] == "true"
    # The image is G's from the returned latent, and closer to the upload than G's image of a random latent.
    again = generate(G, torch.tensor([data["latent"]], dtype=torch.float32))
    redrawn = ((again[0, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    assert np.abs(redrawn.astype(int) - image.astype(int)).max() <= 1
    random = ((generate(G, latents(64, 6, seed=9))[:, 0] + 1) * 127.5).round().numpy()
    random_mse = ((random - pixels) ** 2).mean(axis=(1, 2))
    assert ((image.astype(float) - pixels) ** 2).mean() < random_mse.min()
    # The same request gives the same answer; a data: URL works as well as bare base64.
    url = "data:image/png;base64," + body["image"]
    assert client.post("/v1/project", json={**body, "image": url}).json()["latent"] == data["latent"]


def test_conditional_model_returns_the_class_or_keeps_a_fixed_one(tmp_path):
    G = _load(tmp_path, num_classes=3)
    image = base64.b64encode(_png(np.full((8, 8), 40, dtype=np.uint8))).decode()
    with TestClient(make_app(G)) as c:
        free = c.post("/v1/project", json={"image": image, "steps": 8})
        assert free.status_code == 200 and free.json()["class"] in (0, 1, 2)
        fixed = c.post("/v1/project", json={"image": image, "steps": 8, "class": 2})
        assert fixed.json()["class"] == 2
        assert c.post("/v1/project", json={"image": image, "class": 3}).status_code == 422


@pytest.mark.parametrize(
    ("image", "status", "code"),
    [
        ("not base64 at all!", 422, "invalid_image"),
        (base64.b64encode(b"GIF89a but not really").decode(), 422, "invalid_image"),
        ("", 422, "invalid_image"),
        ("data:image/png,abc", 422, "invalid_image"),
        (base64.b64encode(b"\x00" * 5000).decode(), 413, "image_too_large"),  # over max_image_bytes 4096
    ],
)
def test_bad_images_are_json_4xx(client, image, status, code):
    r = client.post("/v1/project", json={"image": image, "steps": 8})
    assert r.status_code == status, r.text
    assert r.json()["error"] == code and r.json()["message"]


def test_bad_fields_and_oversized_bodies_are_4xx(client):
    image = base64.b64encode(_png(np.zeros((8, 8), dtype=np.uint8))).decode()
    assert client.post("/v1/project", json={"image": image, "steps": 41}).status_code == 422  # over max 40
    assert client.post("/v1/project", json={"image": image, "class": 1}).status_code == 422  # unconditional
    assert client.post("/v1/project", json={"steps": 8}).status_code == 422  # no image
    huge = "A" * 20_000  # over the body limit for 4096-byte images: refused before it is read
    assert client.post("/v1/project", json={"image": huge}).status_code == 413
    # Other endpoints keep their small body limit.
    assert client.post("/v1/generate", json={"n": 1, "pad": huge}).status_code == 413


def test_too_many_pixels_is_refused_before_decoding(client, monkeypatch):
    monkeypatch.setattr("ganforge.project.MAX_PIXELS", 50)
    image = base64.b64encode(_png(np.zeros((8, 8), dtype=np.uint8))).decode()
    r = client.post("/v1/project", json={"image": image, "steps": 8})
    assert r.status_code == 422 and "over the limit" in r.json()["message"]


def test_a_2d_model_has_no_projection(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=1, channels=2, z_dim=4, width=8, out_activation="none")
    path = tmp_path / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "toy-ring", "step": 1, "data": "toy:ring8", "seed": 0})
    with TestClient(make_app(load_generator(path))) as c:
        assert c.get("/v1/model").json()["can_project"] is False
        assert c.post("/v1/project", json={"image": "AAAA"}).status_code in (404, 405)


def test_page_has_the_find_box(client):
    page = client.get("/").text
    assert 'id="find-form"' in page and 'type="file"' in page
    assert "/v1/project" in client.get("/static/app.js").text
