"""Nothing a run leaves behind is wrong: no checkpoint with non-finite weights, no half-written temporary
file after a full disk or a kill, no second run interleaving its files with the first (the run-folder lock,
with a stale lock of a dead run taken over), and a run folder that cannot be written is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from minimrcnn.engine import run_folder
from minimrcnn.engine.checkpoint import (
    check_resumable,
    load_checkpoint,
    non_finite_tensors,
    remove_stale_temporaries,
    save_checkpoint,
)
from minimrcnn.errors import CheckpointError, TrainingDiverged
from minimrcnn.presets import figures_cpu, shapes_cpu

ROOT = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------------------------------------- checkpoints
def test_non_finite_weights_are_never_written_and_the_message_names_the_good_one(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "iteration": 4})
    model = {"w": torch.tensor([1.0, float("nan"), 2.0]), "b": torch.ones(2)}
    bad = {
        "model": model,
        "optimizer": {"state": {0: {"exp_avg": torch.tensor([float("inf")])}}},
        "iteration": 6,
    }
    with pytest.raises(TrainingDiverged) as info:
        save_checkpoint(path, bad)
    message = str(info.value)
    assert message.startswith("iteration 6: 2 tensors") and "first: w" in message
    assert f"the last good checkpoint is {path} (iteration 4)" in message and "\n" not in message
    assert load_checkpoint(path)["iteration"] == 4 and torch.equal(
        load_checkpoint(path)["model"]["w"], torch.ones(3)
    )
    assert non_finite_tensors(bad["optimizer"]) == ["state.0.exp_avg"]
    assert non_finite_tensors({"steps": torch.tensor([3])}) == []  # integer tensors cannot be NaN


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path):
    """A real failed write: the file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes write() fail with
    EFBIG partway through torch.save, as ENOSPC does on a full disk."""
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(4)}, "iteration": 2})
    script = textwrap.dedent(f"""
        import resource, signal, torch
        from minimrcnn.engine.checkpoint import save_checkpoint
        from minimrcnn.errors import run_command
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))
        state = {{"model": {{"w": torch.ones(1_000_000)}}, "iteration": 9}}
        run_command(lambda: save_checkpoint({str(path)!r}, state))
    """)  # fmt: skip
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1 and p.stderr.startswith(f"error: {path}: could not write the checkpoint")
    assert "(iteration 2)" in p.stderr  # the checkpoint kept, named
    assert sorted(f.name for f in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert load_checkpoint(path)["iteration"] == 2


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    path = tmp_path / "checkpoint.pt"
    stale, live = (
        tmp_path / f".checkpoint.pt.tmp-{dead_pid()}",
        tmp_path / f".checkpoint.pt.tmp-{os.getppid()}",
    )
    stale.write_bytes(b"\0" * 100)
    live.write_bytes(b"\0" * 100)  # a running process's write in progress: left alone
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "iteration": 1})
    assert not stale.exists() and live.exists()
    assert remove_stale_temporaries(path) == []


def test_a_killed_write_leaves_the_old_checkpoint_and_its_temporary_file_is_removed_later(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "iteration": 1})
    script = textwrap.dedent(f"""
        import os, signal, torch
        from minimrcnn.engine import checkpoint
        def save_and_die(obj, f, *a, **k):
            f.write(b"partial")
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save_and_die
        checkpoint.save_checkpoint({str(path)!r}, {{"model": {{"w": torch.zeros(2)}}, "iteration": 2}})
    """)
    p = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120
    )
    assert p.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob(".checkpoint.pt.tmp-*"))) == 1 and load_checkpoint(path)["iteration"] == 1
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "iteration": 3})
    assert sorted(f.name for f in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_resume_refuses_another_presets_checkpoint():
    state = {"config": figures_cpu().to_dict()}
    with pytest.raises(CheckpointError, match=r"^--resume: runs/x/checkpoint\.pt is a run of 'figures_cpu'"):
        check_resumable(state, shapes_cpu(), "runs/x/checkpoint.pt")
    check_resumable({"config": shapes_cpu().to_dict()}, shapes_cpu(), "runs/x/checkpoint.pt")


# ---------------------------------------------------------------------------------------------- run folder
def test_out_that_is_a_file_or_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(run_folder.RunFolderError, match=r"^--out .*f: is a file, not a folder$"):
        run_folder.prepare(tmp_path / "f")
    with pytest.raises(run_folder.RunFolderError, match=r"^--out .*f/run: cannot write there \(a part of"):
        run_folder.prepare(tmp_path / "f" / "run")
    with pytest.raises(run_folder.RunFolderError, match=r"^--out /sys/minimrcnn-x: cannot write there"):
        run_folder.prepare("/sys/minimrcnn-x")  # not writable, even by root
    assert run_folder.prepare(tmp_path / "a" / "b").is_dir()


def hold_lock(folder: Path) -> subprocess.Popen:
    script = textwrap.dedent(f"""
        import time
        from minimrcnn.engine import run_folder
        with run_folder.locked({str(folder)!r}):
            print("locked", flush=True)
            time.sleep(120)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert p.stdout.readline().strip() == "locked"
    return p


def test_a_second_run_on_a_locked_folder_is_refused_naming_the_owner(tmp_path):
    holder = hold_lock(tmp_path / "run")
    try:
        owner = json.loads((tmp_path / "run" / ".lock").read_text())
        assert owner["pid"] == holder.pid and owner["host"] == os.uname().nodename
        with pytest.raises(run_folder.RunFolderError) as info:
            with run_folder.locked(tmp_path / "run"):
                pass
        assert f"another run is using this folder (pid {holder.pid} on {owner['host']}" in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    notes = []
    with run_folder.locked(tmp_path / "run", note=notes.append):  # the killed holder's lock is stale now
        assert json.loads((tmp_path / "run" / ".lock").read_text())["pid"] == os.getpid()
    assert len(notes) == 1 and f"no longer running (pid {holder.pid}" in notes[0]
    assert not (tmp_path / "run" / ".lock").exists()


def test_a_lock_file_of_a_dead_process_is_taken_over_with_a_note(tmp_path):
    (tmp_path / "run").mkdir()
    pid = dead_pid()
    (tmp_path / "run" / ".lock").write_text(json.dumps({"pid": pid, "host": "h", "started": "then"}))
    (tmp_path / "run" / f".checkpoint.pt.tmp-{pid}").write_bytes(b"\0" * 10)
    notes = []
    with run_folder.locked(tmp_path / "run", note=notes.append):
        pass
    assert f"took over {tmp_path / 'run' / '.lock'}" in notes[0] and f"pid {pid} on h, since then" in notes[0]
    assert "removed" in notes[1] and not (tmp_path / "run" / f".checkpoint.pt.tmp-{pid}").exists()
