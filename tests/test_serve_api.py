"""The HTTP API: endpoints, formats, determinism, provenance, batching, bad input, tokens, the CLI."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from ganforge.checkpoint import load_generator, save_generator  # noqa: E402
from ganforge.cli import main  # noqa: E402
from ganforge.config import ModelConfig  # noqa: E402
from ganforge.images import png_bytes, to_uint8  # noqa: E402
from ganforge.models import build_generator  # noqa: E402
from ganforge.sample import MAX_SEED, generate, latents, sample, slerp  # noqa: E402
from ganforge.serve import make_app  # noqa: E402
from ganforge.serve.batching import MicroBatcher, is_row_invariant  # noqa: E402


def _generator_file(folder, num_classes: int = 0):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=100, width=256, num_classes=num_classes)
    path = folder / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "seed", "step": 0, "data": "mnist", "seed": 0})
    return path


KEY = bytes(range(32))  # the module's servers outlive each test's GANFORGE_HOME, so they get a key of their own


@pytest.fixture(scope="module")
def G_file(tmp_path_factory):
    return _generator_file(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="module")
def G(G_file):
    return load_generator(G_file)


@pytest.fixture(scope="module")
def G_cond(tmp_path_factory):
    return load_generator(_generator_file(tmp_path_factory.mktemp("gen_cond"), num_classes=10))


@pytest.fixture(scope="module")
def client(G):
    with TestClient(make_app(G, max_n=64, max_steps=16, watermark=KEY)) as c:
        yield c


@pytest.fixture(scope="module")
def client_cond(G_cond):
    with TestClient(make_app(G_cond, watermark=KEY)) as c:
        yield c


def _decode(png: bytes) -> tuple[np.ndarray, dict[str, str]]:
    """Pixels and text chunks (the XMP packet left out, as png_text does)."""
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        return np.asarray(im), {k: v for k, v in im.text.items() if k != "XML:com.adobe.xmp"}


def _marked(G, pixels: np.ndarray) -> np.ndarray:
    """What the module's servers send for these pixels: marked with KEY."""
    from ganforge.marking import make_marker

    return make_marker(KEY, G.sha256).apply(pixels)


def _json_pixels(response) -> np.ndarray:
    return np.stack([_decode(base64.b64decode(b))[0] for b in response.json()["images"]])


def test_healthz_and_model(client, G):
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/model").json()
    assert info["sha256"] == G.sha256
    assert info["config"]["z_dim"] == 100 and info["image_size"] == 28 and info["channels"] == 1
    assert info["is_conditional"] is False and info["classes"] == []
    assert info["provenance"]["preset"] == "seed"
    assert info["limits"] == {
        "max_n": 64, "max_steps": 16, "max_body_bytes": 16384, "max_image_bytes": 1_048_576, "max_project_steps": 500
    }  # fmt: skip
    assert info["can_project"] is True


def test_openapi_is_served_and_states_the_limits(client):
    spec = client.get("/openapi.json").json()
    assert {"/healthz", "/v1/model", "/v1/generate", "/v1/interpolate"} <= set(spec["paths"])
    n = spec["components"]["schemas"]["GenerateRequest"]["properties"]["n"]
    assert n["minimum"] == 1 and n["maximum"] == 64
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN


def test_generate_json_matches_the_unbatched_forward(client, G):
    r = client.post("/v1/generate", json={"n": 5, "seed": 7, "format": "json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["seed"], body["n"], len(body["images"])) == (7, 5, 5)
    expected = _marked(G, to_uint8(sample(G, 5, seed=7)))  # the server draws (and marks) what the library does
    np.testing.assert_array_equal(_json_pixels(r), expected[..., 0])


def test_same_seed_same_images_and_prefixes_agree(client):
    a = client.post("/v1/generate", json={"n": 8, "seed": 123, "format": "json"}).json()["images"]
    b = client.post("/v1/generate", json={"n": 8, "seed": 123, "format": "json"}).json()["images"]
    c = client.post("/v1/generate", json={"n": 3, "seed": 123, "format": "json"}).json()["images"]
    d = client.post("/v1/generate", json={"n": 8, "seed": 124, "format": "json"}).json()["images"]
    assert a == b and a[:3] == c and a != d
    grid_1 = client.post("/v1/generate", json={"n": 9, "seed": 5}).content
    assert grid_1 == client.post("/v1/generate", json={"n": 9, "seed": 5}).content


def test_grid_format_is_one_png_with_provenance(client, G):
    r = client.post("/v1/generate", json={"n": 16, "seed": 3, "format": "grid"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    pixels, text = _decode(r.content)
    assert pixels.shape == (4 * 30 + 2, 4 * 30 + 2)
    assert text["ganforge:generator_sha256"] == G.sha256
    assert text["ganforge:seed"] == "3" and text["ganforge:index"] == "0-15"
    assert text["ganforge:synthetic"] == "true" and text["Software"].startswith("ganforge")


def test_zip_format_has_one_png_an_image_with_provenance(client, G):
    r = client.post("/v1/generate", json={"n": 4, "seed": 11, "format": "zip", "truncation": 0.5})
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.content)) as archive:
        names = archive.namelist()
        assert names == [f"seed11_{i:05d}.png" for i in range(4)]
        for i, name in enumerate(names):
            pixels, text = _decode(archive.read(name))
            assert pixels.shape == (28, 28)
            assert text["ganforge:seed"] == "11" and text["ganforge:index"] == str(i)
            assert text["ganforge:generator_sha256"] == G.sha256 and text["ganforge:truncation"] == "0.5"
    assert (
        r.content == client.post("/v1/generate", json={"n": 4, "seed": 11, "format": "zip", "truncation": 0.5}).content
    )


def test_json_pngs_carry_provenance(client, G):
    images = client.post("/v1/generate", json={"n": 2, "seed": 9, "format": "json"}).json()["images"]
    for i, b64 in enumerate(images):
        text = _decode(base64.b64decode(b64))[1]
        assert text["ganforge:index"] == str(i) and text["ganforge:generator_sha256"] == G.sha256


def test_interpolate(client, G):
    r = client.post("/v1/interpolate", json={"seed_a": 1, "seed_b": 2, "steps": 6, "format": "json"})
    assert r.status_code == 200
    z = slerp(latents(1, 100, seed=1)[0], latents(1, 100, seed=2)[0], torch.linspace(0, 1, 6))
    np.testing.assert_array_equal(_json_pixels(r), _marked(G, to_uint8(generate(G, z)))[..., 0])
    # The ends are the seeds' own first images.
    first = client.post("/v1/generate", json={"n": 1, "seed": 1, "format": "json"})
    np.testing.assert_array_equal(_json_pixels(r)[0], _json_pixels(first)[0])
    strip, text = _decode(client.post("/v1/interpolate", json={"seed_a": 1, "seed_b": 2, "steps": 6}).content)
    assert strip.shape == (32, 6 * 30 + 2)
    assert "seed 1 to seed 2" in text["ganforge:interpolation"] and text["ganforge:seed_b"] == "2"


def test_conditional_model_takes_a_class(client_cond):
    info = client_cond.get("/v1/model").json()
    assert info["is_conditional"] and info["classes"] == list(range(10))
    r3 = client_cond.post("/v1/generate", json={"n": 4, "seed": 0, "class": 3, "format": "json"})
    r4 = client_cond.post("/v1/generate", json={"n": 4, "seed": 0, "class": 4, "format": "json"})
    assert r3.status_code == r4.status_code == 200 and r3.json()["images"] != r4.json()["images"]
    assert _decode(base64.b64decode(r3.json()["images"][0]))[1]["ganforge:class"] == "3"
    r = client_cond.post("/v1/interpolate", json={"steps": 3, "class": 9, "format": "json"})
    assert r.status_code == 200
    bad = client_cond.post("/v1/generate", json={"n": 1, "class": 10})
    assert bad.status_code == 422 and "class must be in 0..9" in bad.json()["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('{"n": 0}', "n: Input should be greater than or equal to 1"),
        ('{"n": 65}', "n: Input should be less than or equal to 64"),
        ('{"seed": -1}', "seed: Input should be greater than or equal to 0"),
        (f'{{"seed": {MAX_SEED + 1}}}', "seed: Input should be less than or equal to"),
        ('{"class": 1}', "this generator is unconditional; drop the class"),
        ('{"n": 3', "malformed JSON"),
        ("not json at all", "malformed JSON"),
        ('{"n": "3"}', "n: Input should be a valid integer"),
        ('{"n": 3.0}', "n: Input should be a valid integer"),
        ('{"n": true}', "n: Input should be a valid integer"),
        ('{"seed": null}', "seed: Input should be a valid integer"),
        ('{"truncation": 0}', "truncation: Input should be greater than 0"),
        ('{"truncation": 1.5}', "truncation: Input should be less than or equal to 1"),
        ('{"truncation": NaN}', "truncation"),
        ('{"truncation": 1e999}', "truncation: Input should be a finite number"),
        ('{"format": "gif"}', "format: Input should be 'grid', 'zip', 'json' or 'scatter'"),
        ('{"colour": 1}', "colour: unknown field"),
        ("[]", "the body must be a JSON object"),
        ("", "needs a JSON object body"),
    ],
)
def test_bad_generate_input_is_422_with_a_message(client, body, needle):
    r = client.post("/v1/generate", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and needle in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"steps": 1}, "steps: Input should be greater than or equal to 2"),
        ({"steps": 17}, "steps: Input should be less than or equal to 16"),
        ({"seed_a": MAX_SEED + 1}, "seed_a"),
        ({"seed_b": -5}, "seed_b"),
        ({"class": 0}, "unconditional"),
    ],
)
def test_bad_interpolate_input_is_422_with_a_message(client, body, needle):
    r = client.post("/v1/interpolate", json=body)
    assert r.status_code == 422 and needle in r.json()["message"]


def test_wrong_method_and_path_are_json_4xx(client):
    assert client.get("/v1/generate").status_code == 405
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/secret.txt").json()["error"] == "not_found"


def test_oversized_body_is_413(client):
    big = '{"n": 1, "pad": "' + "x" * 20_000 + '"}'
    r = client.post("/v1/generate", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "over 16384 bytes" in r.json()["message"]

    def chunks():  # no Content-Length: the limit must hold for a chunked body too
        for _ in range(100):
            yield b" " * 1000

    r = client.post("/v1/generate", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    pieces = (c for c in [b'{"n": 2,', b' "seed": 4}'])
    r = client.post("/v1/generate", content=pieces, headers={"Content-Type": "application/json"})
    assert r.status_code == 200


def test_a_form_encoded_body_says_to_send_json(client):
    r = client.post("/v1/generate", content='{"n": 2}', headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and "Content-Type: application/json" in r.json()["message"]


def test_token(G):
    with TestClient(make_app(G, token="s3cret")) as c:
        for path in ("/v1/model", "/openapi.json"):
            r = c.get(path)
            assert r.status_code == 401 and r.json()["message"].startswith("missing token")
            assert "Authorization: Bearer" in r.json()["message"]
            assert r.headers["www-authenticate"] == "Bearer"
            wrong = c.get(path, headers={"Authorization": "Bearer wrong"})
            assert wrong.status_code == 401 and wrong.json()["message"].startswith("wrong token")
            basic = c.get(path, headers={"Authorization": "Basic s3cret"})
            assert basic.status_code == 401 and "Basic scheme" in basic.json()["message"]
            assert c.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        # A load balancer's health probe carries no token, and often uses HEAD.
        assert c.get("/healthz").json() == {"status": "ok"} and c.head("/healthz").status_code == 200
        assert c.post("/v1/generate", json={"n": 1}).status_code == 401
        ok = c.post("/v1/generate", json={"n": 1}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert c.get("/v1/nothing").status_code == 401  # no probing of paths either
        # The page's own files hold no data; the page sends the token from sessionStorage.
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert c.get("/favicon.ico").status_code == 200


def test_page_and_static_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "New samples" in page.text and "/static/app.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # offline: nothing from a CDN
    js = client.get("/static/app.js")
    assert js.headers["content-type"].startswith("text/javascript") and "/v1/generate" in js.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_concurrent_requests_are_batched_and_bit_identical(G):
    batcher = MicroBatcher(G, wait_s=0.05)
    assert batcher.batching, "G's rows depend on their place in a chunk on this machine"
    requests = [(n, seed) for n, seed in [(1, 0), (5, 1), (16, 2), (33, 3), (2, 4), (70, 5)]]
    forwards = []
    run = batcher._run

    def counting_run(jobs):
        forwards.append(len(jobs))
        return run(jobs)

    batcher._run = counting_run  # type: ignore[method-assign]

    async def all_at_once():
        return await asyncio.gather(*(batcher.generate(latents(n, 100, seed=s)) for n, s in requests))

    try:
        results = asyncio.run(all_at_once())
    finally:
        batcher.close()
    assert forwards == [len(requests)]  # one forward served every request
    for (n, seed), images in zip(requests, results, strict=True):
        assert torch.equal(images, batcher.forward(latents(n, 100, seed=seed)))


def test_api_results_do_not_depend_on_concurrent_load(client):
    def get(seed):
        return client.post("/v1/generate", json={"n": 7, "seed": seed, "format": "json"}).json()["images"]

    alone = {seed: get(seed) for seed in range(6)}
    with ThreadPoolExecutor(6) as pool:
        together = dict(zip(range(6), pool.map(get, range(6)), strict=True))
    assert together == alone


def test_row_invariance_probe_and_unbatched_fallback(G):
    assert is_row_invariant(G, chunk=8)

    class Positional(torch.nn.Module):  # row i gets +i: its output depends on its place in the chunk
        cfg = G.cfg

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, z, labels=None):
            return (z[:, :1, None, None] + torch.arange(z.size(0))[:, None, None, None]).expand(-1, 1, 28, 28)

    assert not is_row_invariant(Positional(), chunk=8)
    batcher = MicroBatcher(Positional(), chunk=8)
    assert not batcher.batching

    async def two():
        return await asyncio.gather(batcher.generate(torch.zeros(2, 100)), batcher.generate(torch.zeros(3, 100)))

    a, b = asyncio.run(two())
    batcher.close()
    assert torch.equal(b[:, 0, 0, 0], torch.arange(3.0))  # each ran alone, from row 0


def test_png_encoder_round_trips_through_pillow():
    rng = np.random.default_rng(0)
    for shape in [(28, 28, 1), (5, 7, 3), (1, 1, 4), (3, 2, 2)]:
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        decoded, text = _decode(png_bytes(pixels, {"Software": "ganforge", "note": "é", "wide": "∑"}))
        np.testing.assert_array_equal(decoded.reshape(shape), pixels)
        assert text == {"Software": "ganforge", "note": "é", "wide": "∑"}
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((2, 2, 1), dtype=np.float32))


def test_real_server_in_a_thread_on_port_0(G):
    app = make_app(G)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while not server.started and time.monotonic() < deadline:
                time.sleep(0.02)
            assert server.started
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
                assert http.get("/healthz").json() == {"status": "ok"}
                r = http.post("/v1/generate", json={"n": 4, "seed": 2, "format": "grid"})
                assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
                assert http.post("/v1/generate", content=b"{oops").status_code == 422
        finally:
            server.should_exit = True
            thread.join(timeout=20)
    assert not thread.is_alive()


def test_cli_refuses_a_public_host_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv("GANFORGE_TOKEN", raising=False)
    assert main(["serve", "x", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganforge: error: --host 0.0.0.0") and "--token" in err


def test_cli_user_errors_exit_2(monkeypatch, capsys, G_file, tmp_path):
    monkeypatch.delenv("GANFORGE_TOKEN", raising=False)
    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "no generator file" in capsys.readouterr().err
    assert main(["serve", str(G_file), "--port", "70000"]) == 2
    assert main(["serve", str(G_file), "--max-n", "0"]) == 2
    assert "--max-n" in capsys.readouterr().err


def test_cli_serve_binds_loopback_and_builds_the_app(monkeypatch, G_file, caplog):
    monkeypatch.delenv("GANFORGE_TOKEN", raising=False)
    served = {}

    def fake_run(self, sockets=None):
        served["address"] = sockets[0].getsockname()
        served["app"] = self.config.app

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: served.setdefault("threads", n))
    assert main(["serve", str(G_file), "--port", "0", "--max-n", "8", "--device", "cpu"]) == 0
    assert served["address"][0] == "127.0.0.1" and served["address"][1] > 0
    assert served["threads"] == 1
    with TestClient(served["app"]) as c:
        assert c.get("/v1/model").json()["limits"]["max_n"] == 8
    assert main(["serve", str(G_file), "--port", "0", "--host", "0.0.0.0", "--token", "t", "--device", "cpu"]) == 0
    assert served["address"][0] == "0.0.0.0"


def test_error_bodies_are_json(client):
    r = client.post("/v1/generate", content=b"\xff\xfe", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and json.loads(r.text)["message"]


def test_openapi_class_text_fits_the_model(client, client_cond):
    def class_description(c):
        return c.get("/openapi.json").json()["components"]["schemas"]["GenerateRequest"]["properties"]["class"][
            "description"
        ]

    assert "unconditional" in class_description(client) and "0..0" not in class_description(client)
    assert "0..9" in class_description(client_cond)


def test_server_pngs_carry_the_same_provenance_as_the_cli(client_cond, G_cond, tmp_path):
    from ganforge.images import png_text
    from ganforge.sample import save_samples

    r = client_cond.post("/v1/generate", json={"n": 6, "seed": 4, "truncation": 0.5})
    served = _decode(r.content)[1]
    [path] = save_samples(G_cond, tmp_path / "cli.png", 6, seed=4, truncation=0.5, watermark=KEY)
    assert served == png_text(path)  # the same keys and values: one provenance function
    assert served["ganforge:class"] == "cycle" and served["ganforge:truncation"] == "0.5"
    assert r.content == path.read_bytes()
    singles = client_cond.post("/v1/generate", json={"n": 3, "seed": 4, "format": "json"}).json()["images"]
    assert [_decode(base64.b64decode(b))[1]["ganforge:class"] for b in singles] == ["0", "1", "2"]


def test_healthz_answers_head(client):
    r = client.head("/healthz")
    assert r.status_code == 200 and r.content == b""
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")


def test_scatter_format_for_a_2d_model(tmp_path):
    from ganforge.images import png_text
    from ganforge.sample import save_samples

    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=1, channels=2, z_dim=4, width=8, out_activation="none")
    path = tmp_path / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"data": "toy:grid25"})
    G_toy = load_generator(path)
    with TestClient(make_app(G_toy)) as c:
        assert c.get("/v1/model").json()["is_points"] is True
        r = c.post("/v1/generate", json={"n": 200, "seed": 1, "format": "scatter"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        pixels, text = _decode(r.content)
        assert min(pixels.shape[:2]) >= 300 and text["ganforge:plot"] == "scatter of 2-D points"
        assert text["ganforge:index"] == "0-199" and text["ganforge:generator_sha256"] == G_toy.sha256
        [cli] = save_samples(G_toy, tmp_path / "s.png", 200, seed=1)
        assert png_text(cli) == text and cli.read_bytes() == r.content  # the page shows what the CLI writes
    with TestClient(make_app(load_generator(_generator_file(tmp_path / "img")))) as c:
        assert c.get("/v1/model").json()["is_points"] is False
        bad = c.post("/v1/generate", json={"n": 2, "format": "scatter"})
        assert bad.status_code == 422 and "2-D (toy) models" in bad.json()["message"]


def test_cli_serve_access_log_is_off_unless_asked(monkeypatch, G_file):
    monkeypatch.delenv("GANFORGE_TOKEN", raising=False)
    configs = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: configs.append(self.config))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    assert main(["serve", str(G_file), "--port", "0", "--device", "cpu"]) == 0
    assert main(["serve", str(G_file), "--port", "0", "--device", "cpu", "--access-log"]) == 0
    assert [c.access_log for c in configs] == [False, True]
    assert configs[1].log_level in ("info", 20)
