"""Property-based fuzzing of the API: nothing a client sends gets a 5xx, and every error is JSON with a message."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from ganforge.config import ModelConfig  # noqa: E402
from ganforge.models import build_generator  # noqa: E402
from ganforge.sample import MAX_SEED  # noqa: E402
from ganforge.serve import make_app  # noqa: E402

# Tiny models keep each example cheap; a conditional one so that `class` has a valid range.
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _app(num_classes: int):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=4, num_classes=num_classes)
    G = build_generator(cfg).eval()
    G.cfg, G.provenance, G.sha256 = cfg, {"preset": "test"}, "0" * 64
    return make_app(G, max_n=16, max_steps=8)


@pytest.fixture(scope="module", params=[0, 3], ids=["unconditional", "conditional"])
def client(request):
    with TestClient(_app(request.param)) as c:
        yield c


def _check(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["message"], str) and body["message"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
# Mostly the real fields with edge values, sometimes anything at all.
edge_ints = st.sampled_from([-1, 0, 1, 2, 3, 8, 16, 17, 2**31, MAX_SEED, MAX_SEED + 1, -(2**70), 2**70])
field_values = edge_ints | st.integers() | json_values | st.sampled_from(["grid", "zip", "json", "png", ""])
bodies = st.dictionaries(
    st.sampled_from(["n", "seed", "seed_a", "seed_b", "steps", "truncation", "class", "format", "extra"]),
    field_values,
    max_size=6,
)


@_SETTINGS
@given(body=bodies | json_values, path=st.sampled_from(["/v1/generate", "/v1/interpolate"]))
def test_json_bodies_never_give_a_5xx(client, body, path):
    # allow_nan: Python's json writes NaN and Infinity, which the server must refuse as well.
    _check(client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"}))


@_SETTINGS
@given(raw=st.binary(max_size=64), path=st.sampled_from(["/v1/generate", "/v1/interpolate", "/v1/model", "/"]))
def test_raw_bytes_never_give_a_5xx(client, raw, path):
    _check(client.post(path, content=raw, headers={"Content-Type": "application/json"}))


schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def api_schema():
    loaded = schemathesis.openapi.from_asgi("/openapi.json", _app(3))
    # Both valid bodies and bodies that break the spec (wrong types, out of range, missing).
    loaded.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_spec_fuzz_finds_no_5xx(case):
    response = case.call()
    assert response.status_code < 500, response.text
