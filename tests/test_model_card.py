"""RUN/MODEL_CARD.md: written by a run, refreshed by `ganforge eval`, served at /v1/model; its numbers are the run's."""

import json
import re

import pytest
import torch
import yaml
from test_train import tiny_cfg, tiny_data

import ganforge.metrics
from ganforge import model_card
from ganforge.cli import main
from ganforge.errors import GanforgeError
from ganforge.train import train

EVAL = {
    "fid": 12.345678901234,
    "kid": 0.0123456789,
    "precision": 0.8125,
    "recall": 0.4375,
    "density": 0.9,
    "coverage": 0.71,
    "classifier_score": 8.765,
    "modes_covered": 10,
    "mode_kl": 0.0312,
    "n_samples": 1000,
    "reference": {"name": "mnist", "split": "test", "count": 10000},
    "extractor": {"name": "mnist", "sha256": "c4ceb398fd20546eca7c24ef10575140144ec985e19d1e97621b88621d89721c"},
    "data": "mnist",
    "seed": 0,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run = tmp_path_factory.mktemp("card") / "run"
    train(tiny_cfg(run, steps=20, r1=0.5, seed=7), dataset=tiny_data())
    return run


def front_matter(text):
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head), body


def test_a_run_writes_its_card_with_hugging_face_front_matter(run):
    text = (run / "MODEL_CARD.md").read_text()
    meta, body = front_matter(text)
    assert meta["library_name"] == "ganforge"
    assert meta["pipeline_tag"] == "unconditional-image-generation"
    assert meta["license"] == "mit"
    assert "model-index" not in meta  # no eval.json yet: no numbers to index
    for section in ("Model details", "Intended use", "Factors", "Metrics", "Evaluation data", "Training data",
                    "Ethical considerations", "Caveats and recommendations"):  # fmt: skip
        assert f"\n## {section}\n" in body
    assert "not been evaluated" in body
    for placeholder in ("TODO", "TBD", "[More Information Needed]", "{", "None"):
        assert placeholder not in body, placeholder


def test_the_card_names_the_training_data_and_the_generator(run):
    meta, body = front_matter((run / "MODEL_CARD.md").read_text())
    data = tiny_data()
    recorded = meta["ganforge"]["training_data"]
    assert recorded["size"] == len(data) == 256
    assert recorded["sha256"] == data.content_hash()
    assert recorded["spec"] == "tiny"
    assert f"{recorded['sha256']}" in body and "256 images" in body
    from ganforge.io import file_digest

    digest = file_digest(run / "generator.safetensors")
    assert meta["ganforge"]["generator_sha256"] == digest
    assert digest in body


def test_every_config_number_in_the_card_equals_config_json(run):
    config = json.loads((run / "config.json").read_text())
    _, body = front_matter((run / "MODEL_CARD.md").read_text())
    details = body.split("## Model details")[1].split("## Intended use")[0]
    expect = {
        "width": config["model"]["width"], "latent size": config["model"]["z_dim"], "batch size": config["batch_size"],
        "seed": config["seed"], "r1": config["r1"], "EMA decay": config["ema_decay"],
    }  # fmt: skip
    for label, value in expect.items():
        found = re.search(rf"{label} ([-0-9.e]+)", details)
        assert found, label
        assert float(found.group(1).rstrip(".")) == value, label
    steps = re.search(r"(\d+) of (\d+) steps", details)
    assert (int(steps.group(1)), int(steps.group(2))) == (20, config["steps"])
    lr = re.search(r"lr G ([-0-9.e]+) / D ([-0-9.e]+), betas \(([-0-9.e]+), ([-0-9.e]+)\)", details)
    assert tuple(map(float, lr.groups())) == (config["lr_g"], config["lr_d"], config["beta1"], config["beta2"])


def test_eval_refreshes_the_card_and_every_metric_equals_eval_json(run, monkeypatch, capsys):
    monkeypatch.setattr(ganforge.metrics, "evaluate", lambda *a, **k: dict(EVAL))
    assert main(["eval", str(run), "--n", "1000"]) == 0
    assert f"wrote {run / 'MODEL_CARD.md'}" in capsys.readouterr().out
    meta, body = front_matter((run / "MODEL_CARD.md").read_text())
    saved = json.loads((run / "eval.json").read_text())
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    by_type = {m["type"]: m["value"] for m in metrics}
    assert by_type == {k: saved[k] for k in model_card.METRICS if k in saved}
    assert all("(mnist features)" in m["name"] for m in metrics)
    dataset = meta["model-index"][0]["results"][0]["dataset"]
    assert (dataset["name"], dataset["split"]) == ("mnist", "test")
    table = dict(re.findall(r"^\| ([A-Za-z ]+) \| ([-0-9.e]+) \|$", body, re.MULTILINE))
    labels = {label: key for key, (_, label) in model_card.METRICS.items()}
    assert {labels[k]: float(v) for k, v in table.items()} == {k: float(saved[k]) for k in by_type}
    assert "10000 images" in body and "1000 samples" in body
    # The refresh kept the training data's identity that only the run knew.
    assert meta["ganforge"]["training_data"]["sha256"] == tiny_data().content_hash()


def test_the_card_is_written_atomically_and_bad_runs_say_what_to_do(tmp_path, run):
    with pytest.raises(GanforgeError, match="no config.json"):
        model_card.write_model_card(tmp_path)
    assert not (tmp_path / "MODEL_CARD.md").exists()
    assert model_card.refresh(tmp_path) is None  # the run/eval hook warns, never raises
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".MODEL_CARD")]
    assert leftovers == []


def test_the_server_returns_the_card_and_the_page_has_a_place_for_it(run):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ganforge.serve.worker import build_app

    settings = {"device": "cpu", "threads": 1, "generator": str(run), "token": None, "max_n": 16, "max_steps": 8}
    app, _ = build_app(settings)
    with TestClient(app) as client:
        model = client.get("/v1/model").json()
        page = client.get("/").text
        script = client.get("/static/app.js").text
    assert model["model_card"] == (run / "MODEL_CARD.md").read_text()
    assert model["sha256"] and model["config"]  # the existing fields stay
    assert 'id="model-card"' in page and "<details" in page
    assert "model.model_card" in script and "textContent = model.model_card" in script


def test_a_bare_generator_file_serves_no_card(tmp_path):
    from ganforge.checkpoint import save_generator
    from ganforge.config import ModelConfig
    from ganforge.models import build_generator

    cfg = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=16)
    torch.manual_seed(0)
    save_generator(tmp_path / "g.safetensors", build_generator(cfg), cfg, {})
    assert model_card.read_model_card(tmp_path / "g.safetensors") is None
