"""The inference path must not pay for Lightning or `datasets`, and `nlu --help` not for torch."""

import subprocess
import sys

HEAVY = {"lightning", "pytorch_lightning", "datasets"}


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return set(out)


def test_inference_path_does_not_import_training_stack(trained):
    modules = loaded_after(
        "import cli.main, nlu, nlu.parser, nlu.eval.evaluate\n"
        f"p = nlu.load({str(trained.model_dir)!r}, backend='torch')\np.parse('hi')"
    )
    assert "torch" in modules and not (HEAVY | {"matplotlib"}) & modules


def test_default_inference_path_does_not_import_torch(trained):
    """`nlu train` exports the graph, and `nlu.load` then takes the ONNX backend."""
    modules = loaded_after(
        f"import cli.main, nlu, nlu.parser\np = nlu.load({str(trained.model_dir)!r})\n"
        "assert p.backend == 'onnx'\np.parse('hi')"
    )
    assert "onnxruntime" in modules and not ({"torch"} | HEAVY | {"matplotlib"}) & modules


def test_cli_entry_does_not_import_torch():
    modules = loaded_after("import cli.main")
    assert not ({"torch"} | HEAVY) & modules


def test_nlu_tag_command_does_not_import_training_stack(trained):
    modules = loaded_after(
        "import sys\nfrom typer.testing import CliRunner\nfrom cli.main import app\n"
        f"r = CliRunner().invoke(app, ['tag', '--model', {str(trained.model_dir)!r}, 'hi'])\n"
        "assert r.exit_code == 0, r.output"
    )
    assert not (HEAVY | {"fastapi", "uvicorn", "matplotlib"}) & modules
