"""`ganforge report`: one self-contained HTML page; lenient with damaged runs, one-line errors for non-runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import CHROMIUM, CHROMIUM_MISSING

from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.images import png_bytes
from ganforge.report import read_run, write_report

WARNING = "mode_collapse: mode KL 1.70 (> 0.5); try --augment ada"


def _make_run(root: Path, name: str = "run", *, steps: int = 1_000, shift: float = 0.0) -> Path:
    run = root / name
    (run / "samples").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"preset": "seed", "steps": steps, "model": {"arch": "mlp"}}))
    rows = []
    for step in range(100, steps + 1, 100):
        row = {"step": step, "loss_d": 1.0 + shift - step / 1e4, "loss_g": 0.8 + step / 1e4, "d_real": 0.7,
               "d_fake": 0.3, "grad_norm_d": 2.0, "grad_norm_g": 1.5, "img_per_s": 900.0}  # fmt: skip
        if step % 500 == 0:
            row.update({"classes_covered": 4.0 + shift, "mode_kl": 0.9, "diversity_ratio": 0.6})
        if step == 500:
            row["warnings"] = [WARNING]
        rows.append(json.dumps(row))
    (run / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    for step in range(250, steps + 1, 250):
        (run / "samples" / f"step_{step:07d}.png").write_bytes(png_bytes(rng.integers(0, 255, (32, 32, 1), np.uint8)))
    (run / "samples.png").write_bytes(png_bytes(np.zeros((32, 32, 1), np.uint8)))
    (run / "eval.json").write_text(json.dumps({"fid": 12.5, "modes_covered": 4, "reference": {"name": "mnist"}}))
    return run


def test_report_holds_plots_grids_warnings_eval_and_config_inline(tmp_path):
    run = _make_run(tmp_path)
    out = write_report([run], run / "report.html")
    page = out.read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2 + 4 + 1  # training curves, quality checks, 4 grids, samples.png
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert WARNING.replace(">", "&gt;") in page
    assert "step 1,000" in page and "eval.json" in page and "12.5" in page and "model.arch" in page


def test_the_memorisation_check_and_its_closest_pairs_show_when_the_run_has_them(tmp_path):
    from ganforge.metrics.memorisation import memorisation
    from ganforge.report import MEMORISATION_FILE, MEMORISATION_PAIRS

    run = _make_run(tmp_path)
    before = write_report([run], tmp_path / "before.html").read_text()
    assert "Memorisation check" not in before
    rng = np.random.default_rng(1)
    train, test = rng.standard_normal((50, 4)), rng.standard_normal((20, 4))
    summary = memorisation(train[:30] + 1e-3, train, test).summary(2)  # near-copies: the check fails
    (run / MEMORISATION_FILE).write_text(json.dumps(summary))
    (run / MEMORISATION_PAIRS).write_bytes(png_bytes(np.zeros((20, 36, 3), np.uint8)))
    page = write_report([run], tmp_path / "after.html").read_text()
    assert "Memorisation check" in page and "the check FAILS" in page and "30 samples" in page
    assert f"{summary['closest'][0]['distance']:.3f}" in page
    assert page.count("data:image/png;base64,") == before.count("data:image/png;base64,") + 1  # the pairs


def test_truncated_last_line_and_empty_runs_give_a_report_of_what_is_there(tmp_path):
    run = _make_run(tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 1100, "loss_d": 0.9')  # killed mid-write
    loaded = read_run(run)
    assert len(loaded.rows) == 10 and "incomplete" in loaded.notes[0]
    assert "incomplete" in write_report([run], tmp_path / "a.html").read_text()

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text("{}")
    (bare / "metrics.jsonl").write_text("")
    page = write_report([bare], tmp_path / "b.html").read_text()
    assert "no logged steps yet" in page and "No sample grids" in page

    (bare / "config.json").write_text("{not json")
    (bare / "metrics.jsonl").write_text('[1, 2]\n{"step": 5, "loss_d": 1.0, "loss_g": 1.0}\n')
    page = write_report([bare], tmp_path / "c.html").read_text()
    assert "config.json could not be read" in page and "1 unreadable lines" in page


def test_several_runs_overlay_in_one_page(tmp_path):
    a, b = _make_run(tmp_path, "lr-high"), _make_run(tmp_path, "lr-low", shift=0.5)
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "compare.html")]) == 0
    page = (tmp_path / "compare.html").read_text()
    assert "lr-high" in page and "lr-low" in page
    assert len(re.findall(r'src="data:image/png', page)) == 2 + 2 * 5


def test_cli_default_output_and_one_line_errors(tmp_path, capsys):
    run = _make_run(tmp_path)
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").is_file() and str(run / "report.html") in capsys.readouterr().out

    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", tmp_path / "missing", run / "config.json"):
        assert main(["report", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ganforge: error: ") and err.count("\n") == 1 and str(bad) in err
    assert main(["report", str(run), "--out", str(tmp_path)]) == 2  # a folder, not a file
    with pytest.raises(GanforgeError):
        write_report([], tmp_path / "x.html")


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason=CHROMIUM_MISSING)
def test_page_loads_in_chromium_without_errors_or_requests(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    out = write_report([_make_run(tmp_path, "a"), _make_run(tmp_path, "b", shift=0.3)], tmp_path / "r.html")
    errors, requests = [], []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri(), wait_until="load")
            decoded = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
        finally:
            browser.close()
    assert errors == []
    assert len(decoded) == 2 + 2 * 5 and all(decoded)
    assert [url for url in requests if not url.startswith("data:")] == [out.as_uri()]
