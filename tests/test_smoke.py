from fastapi.testclient import TestClient

from api.app import create_app
from trust.settings import Settings


def test_healthz(tmp_path):
    client = TestClient(create_app(Settings(var_dir=tmp_path)))
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
