"""Atomic writes: regular files and new paths are replaced; folders, devices, FIFOs and sockets are refused."""

from __future__ import annotations

import os
import re
import socket
import stat

import numpy as np
import pytest

from ganforge.data import idx
from ganforge.errors import GanforgeError
from ganforge.io import atomic_path, write_bytes_atomic, write_target, write_text_atomic


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_new_and_regular_files_are_written(tmp_path):
    path = tmp_path / "sub" / "a.txt"
    write_text_atomic(path, "one")
    write_text_atomic(path, "two")
    assert path.read_text() == "two" and _leftovers(path.parent) == []


def test_failed_block_leaves_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old" and _leftovers(tmp_path) == []


def test_fifo_is_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(GanforgeError, match=r"cannot write .*pipe: it is a FIFO \(named pipe\), not a regular file"):
        write_bytes_atomic(fifo, b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _leftovers(tmp_path) == []


@pytest.fixture
def char_device(tmp_path):
    """A character device to write at: a private copy of /dev/null's node where we may make one (root).

    Never the real /dev/null for root: code that wrongly renames onto it would replace the machine's
    /dev/null with a regular file. Other accounts cannot rename into /dev, so there /dev/null is safe.
    """
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.stat("/dev/null").st_rdev)
    except PermissionError:
        if os.geteuid() == 0:
            pytest.skip("cannot make a device node here")
        return "/dev/null"
    return str(node)


def test_char_device_is_refused(char_device):
    before = os.stat(char_device)
    with pytest.raises(GanforgeError, match=f"cannot write {re.escape(char_device)}: it is a character device"):
        write_text_atomic(char_device, "x")
    after = os.stat(char_device)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_folder_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(GanforgeError, match="it is a folder, not a regular file; pass a file path inside it"):
        write_text_atomic(tmp_path / "d", "x")
    assert (tmp_path / "d").is_dir()


def test_socket_is_refused(tmp_path):
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(GanforgeError, match="it is a socket"):
            write_target(path)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_symlink_is_followed_and_stays(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "a.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_text_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new" and _leftovers(tmp_path / "real") == [] and _leftovers(tmp_path) == []
    # a dangling link gets its file created where it points
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "real" / "b.txt")
    write_text_atomic(dangling, "b")
    assert dangling.is_symlink() and (tmp_path / "real" / "b.txt").read_text() == "b"


def test_symlink_to_a_special_file_is_refused(tmp_path, char_device):
    link = tmp_path / "link"
    link.symlink_to(char_device)
    with pytest.raises(GanforgeError, match=rf"link \(a link to {re.escape(char_device)}\): it is a character device"):
        write_text_atomic(link, "x")
    assert link.is_symlink() and stat.S_ISCHR(os.stat(char_device).st_mode)


def test_write_idx_goes_through_the_checks(tmp_path):
    # a folder, not a FIFO: a plain open() of a FIFO would block the old code forever
    (tmp_path / "x-images-idx3-ubyte").mkdir()
    with pytest.raises(GanforgeError, match="it is a folder"):
        idx.write_idx(tmp_path / "x-images-idx3-ubyte", np.zeros((1, 2, 2), dtype=np.uint8))
