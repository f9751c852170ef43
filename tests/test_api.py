import subprocess
import sys

import ganforge


def test_all_lists_exactly_the_public_names():
    public = {name for name in vars(ganforge) if not name.startswith("_")} - {
        # submodules that importing the package loads as attributes
        "batches", "checkpoint", "config", "data", "device", "errors", "images", "io", "losses", "metrics",
        "models", "version",
    }  # fmt: skip
    assert sorted(ganforge.__all__) == sorted(public | {"__version__"})
    for name in ganforge.__all__:
        assert getattr(ganforge, name) is not None


def test_importing_touches_no_gpu_network_or_server():
    code = (
        "import socket\n"
        "def refuse(*args): raise AssertionError('importing ganforge opened a connection')\n"
        "socket.socket.connect = refuse\n"
        "import sys, ganforge, torch\n"
        "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules\n"
        "assert not torch.cuda.is_initialized()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
