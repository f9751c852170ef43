"""The web page in headless Chromium (Debian's package, driven by Playwright): samples, new samples, the slider.

Skips when /usr/bin/chromium or the playwright package is absent; CI installs both (never the
browser Playwright would download: that needs the network).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'")

from conftest import CHROMIUM, CHROMIUM_MISSING  # noqa: E402

from ganforge.checkpoint import load_generator, save_generator  # noqa: E402
from ganforge.config import ModelConfig  # noqa: E402
from ganforge.models import build_generator  # noqa: E402
from ganforge.serve import make_app  # noqa: E402

if CHROMIUM is None:
    pytest.skip(CHROMIUM_MISSING, allow_module_level=True)

# No background traffic: this machine's network is closed, and Chromium would retry without end.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
TOKEN = "page-token"


def _serve(app):
    """uvicorn on 127.0.0.1 and a free port, in a thread; returns (server, thread, socket, port)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    return server, thread, sock, sock.getsockname()[1]


@pytest.fixture(scope="module", params=[0, 10], ids=["unconditional", "conditional"])
def base_url(request, tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=100, width=64, num_classes=request.param)
    path = tmp_path_factory.mktemp("gen") / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "seed", "step": 0, "data": "mnist", "seed": 0})
    server, thread, sock, port = _serve(make_app(load_generator(path), token=TOKEN))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with a fresh profile; each test opens its own tab (so its own sessionStorage)."""
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        page.close()


def _loaded_sources(page, selector: str) -> list[str]:
    """The src of every image under selector, once all of them have decoded."""
    page.wait_for_function(
        """sel => { const imgs = [...document.querySelectorAll(sel)];
                    return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }""",
        arg=selector,
    )
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => i.src)")


def _watch_errors(page) -> list[str]:
    """Every script error, console error and failed or 4xx/5xx request of the page, as it happens."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    return errors


def test_page_shows_samples_new_samples_and_interpolation(page, base_url):
    errors = _watch_errors(page)
    page.goto(f"{base_url}/?token={TOKEN}")
    assert "token" not in page.url  # the token moved to sessionStorage, out of the address bar

    # 1. The grid of samples for seed 0, and the model's provenance.
    first = _loaded_sources(page, "#grid img")
    assert len(first) == 16 and all(src.startswith("data:image/png;base64,") for src in first)
    page.wait_for_selector("#provenance dd")
    assert "seed" in page.inner_text("#provenance") and "mlp" in page.inner_text("#summary")

    # 2. "New samples" picks a new seed and new images arrive.
    page.click("#new-samples")
    page.wait_for_function("seed => document.querySelector('#grid').dataset.seed !== seed", arg="0")
    second = _loaded_sources(page, "#grid img")
    assert len(second) == 16 and second != first
    assert page.input_value("#seed") != "0"

    # 3. The same seed shows the same images again.
    page.fill("#seed", "0")
    page.press("#seed", "Enter")
    page.wait_for_function("() => document.querySelector('#grid').dataset.seed === '0'")
    assert _loaded_sources(page, "#grid img") == first

    # 4. The interpolation strip and its slider: moving it changes the frame.
    strip = _loaded_sources(page, "#strip img")
    assert len(strip) == 16
    frame_0 = page.get_attribute("#frame", "src")
    assert frame_0 == strip[0]
    page.fill("#slider", "15")  # sets the value and fires input
    page.wait_for_function("() => document.querySelector('#frame-index').value === '16'")
    assert page.get_attribute("#frame", "src") == strip[15] != frame_0
    assert page.eval_on_selector("#frame", "i => i.complete && i.naturalWidth") == 28
    page.click("#strip img:nth-child(8)")
    assert page.input_value("#slider") == "7" and page.get_attribute("#frame", "src") == strip[7]

    # Chromium asks for the icon after the page has loaded; a 404 there was a console error on every load.
    page.wait_for_function("() => document.querySelector('link[rel=icon]') !== null")
    page.wait_for_timeout(300)
    assert page.inner_text("#status") == "" and errors == []


def test_class_picker_for_a_conditional_model(page, base_url):
    page.goto(f"{base_url}/?token={TOKEN}")
    first = _loaded_sources(page, "#grid img")
    is_conditional = page.is_visible(".class-picker")
    options = page.eval_on_selector_all("#class option", "os => os.map(o => o.value)")
    if not is_conditional:
        assert options == [""]
        return
    assert options == [""] + [str(c) for c in range(10)]
    page.select_option("#class", "3")
    page.wait_for_function("srcs => document.querySelector('#grid img').src !== srcs[0]", arg=first)
    assert _loaded_sources(page, "#grid img") != first


def test_page_without_token_asks_for_it(page, base_url):
    page.goto(base_url)
    page.wait_for_selector("#token-form:not([hidden])")
    assert "token" in page.inner_text("#status")
    page.fill("#token", TOKEN)
    page.click("#token-form button")
    assert len(_loaded_sources(page, "#grid img")) == 16


def test_find_this_image_box(page, base_url, tmp_path):
    errors = _watch_errors(page)
    upload = tmp_path / "digit.png"
    Image.new("L", (40, 40), 0).save(upload)  # any size: the server converts it to the model's
    page.goto(f"{base_url}/?token={TOKEN}")
    page.wait_for_selector("#find-section:not([hidden])")
    page.set_input_files("#find-file", str(upload))
    page.fill("#find-steps", "12")
    page.click("#find-form button")
    page.wait_for_selector("#find-result:not([hidden])")
    found = _loaded_sources(page, "#find-result img")
    assert len(found) == 2 and all(src.startswith("data:image/png;base64,") for src in found)
    assert page.eval_on_selector("#find-output", "i => i.naturalWidth") == 28
    facts = page.inner_text("#find-facts")
    assert "pixel MSE" in facts and "latent" in facts
    assert ("class" in facts) == page.is_visible(".class-picker")
    assert errors == []


@pytest.fixture(scope="module")
def toy_url(tmp_path_factory):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=1, channels=2, z_dim=4, width=16, out_activation="none")
    path = tmp_path_factory.mktemp("toy") / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "toy-ring", "step": 0, "data": "toy:ring8", "seed": 0})
    server, thread, sock, port = _serve(make_app(load_generator(path)))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def test_a_2d_model_shows_a_scatter_plot_not_squares(page, toy_url):
    errors = _watch_errors(page)
    page.goto(toy_url)
    page.wait_for_function(
        "() => { const i = document.querySelector('#scatter'); return !i.hidden && i.complete && i.naturalWidth > 0; }"
    )
    assert page.eval_on_selector("#scatter", "i => i.naturalWidth") >= 300
    assert page.is_hidden("#grid") and page.is_hidden("#interp-section") and page.is_hidden("#find-section")
    first = page.get_attribute("#scatter", "src")
    page.click("#new-samples")
    page.wait_for_function("src => document.querySelector('#scatter').src !== src", arg=first)
    page.wait_for_timeout(300)
    assert page.inner_text("#status") == "" and errors == []


def test_the_model_card_is_a_collapsed_section_shown_as_text(page, tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    save_generator(tmp_path / "generator.safetensors", build_generator(cfg), cfg, {"preset": "seed"})
    card = "---\nlibrary_name: ganforge\n---\n# Model card: run\n\n<img src=x onerror=alert(1)> stays text\n"
    app = make_app(load_generator(tmp_path / "generator.safetensors"), model_card=card)
    server, thread, sock, port = _serve(app)
    try:
        errors = _watch_errors(page)
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#card-section:not([hidden])", state="attached")
        assert page.is_hidden("#model-card")  # collapsed until opened
        page.click("#card-section summary")
        assert page.inner_text("#model-card").strip() == card.strip()
        assert page.eval_on_selector_all("#model-card img", "els => els.length") == 0  # never parsed as HTML
        assert errors == []
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def test_without_a_card_the_section_stays_hidden(page, base_url):
    page.goto(f"{base_url}/?token={TOKEN}")
    page.wait_for_selector("#provenance dd")
    assert page.is_hidden("#card-section")
