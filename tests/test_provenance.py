"""Every run records what made it: code, data, libraries, machine and seed."""

from __future__ import annotations

import hashlib
import json
import subprocess

import torch

from nlu.training.provenance import PROVENANCE, git_state


def test_the_run_and_its_model_record_code_data_libraries_machine_and_seed(trained, tiny_dir):
    info = json.loads((trained.model_dir / "info.json").read_text())
    (entry,) = info["provenance"]
    assert json.loads((trained.run_dir / PROVENANCE).read_text()) == info["provenance"]
    assert entry["resumed_from_epoch"] is None and entry["seed"] == 1
    files = sorted(p for split in ("train", "valid", "test") for p in (tiny_dir / split).iterdir())
    assert entry["data_files"] == {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }
    assert entry["versions"]["torch"] in (torch.__version__, torch.__version__.split("+")[0])
    assert entry["versions"]["pytorch-lightning"] and entry["versions"]["pytorch-crf"]
    assert entry["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert entry["threads"] >= 1 and entry["processes"] == 1
    # The tests run from the checkout: its commit, unless it is a clean copy without .git.
    if entry["git"] is not None:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
        assert entry["git"]["commit"] == head.stdout.strip()


def test_data_under_nlu_data_dir_is_named_from_it(tmp_path, monkeypatch, tiny_dir):
    from nlu.config import load_config
    from nlu.training.provenance import record

    monkeypatch.setenv("NLU_DATA_DIR", str(tiny_dir.parent))
    entry = record(load_config(None, [f"data.name={tiny_dir.name}"]), 1, None)
    assert "$NLU_DATA_DIR/tiny/train/seq.in" in entry["data_files"]
    assert not any(str(tiny_dir) in name for name in entry["data_files"])


def _git(folder, *args):
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


def test_git_state_is_the_checkout_s_own_or_none(tmp_path):
    repo = tmp_path / "repo"
    (repo / "inner").mkdir(parents=True)
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    state = git_state(repo)
    assert state is not None and len(state["commit"]) == 40 and state["dirty"] is False
    (repo / "a.txt").write_text("b\n")
    assert git_state(repo)["dirty"] is True
    # A folder inside another checkout (a venv inside a project, say) has no commit of its own.
    assert git_state(repo / "inner") is None
    assert git_state(tmp_path) is None
