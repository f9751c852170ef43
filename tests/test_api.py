import subprocess
import sys
import types

import ganforge


def test_all_lists_exactly_the_public_names():
    public = {
        name
        for name, value in ((name, getattr(ganforge, name)) for name in dir(ganforge))
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(ganforge.__all__) == sorted(public | {"__version__"})
    assert callable(ganforge.train) and callable(ganforge.sample) and callable(ganforge.evaluate)


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
