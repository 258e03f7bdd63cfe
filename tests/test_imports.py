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


def without(modules: list[str], code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter where importing any of `modules` fails, as it does
    where the extra that brings them is not installed."""
    blocked = "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", f"import sys\n{blocked}{code}"],
                          capture_output=True, text=True)  # fmt: skip


def test_a_missing_extra_is_one_line_naming_it(trained):
    model = str(trained.model_dir)
    for modules, args, extra in [
        (["torch"], ["tag", "--model", model, "--backend", "torch", "hi"], "torch"),
        (["fastapi", "uvicorn"], ["serve", "--model", model], "serve"),
        (["pytorch_lightning"], ["train", "--set", "train.max_epochs=1"], "train"),
    ]:
        code = f"from cli.main import main\nsys.argv = ['nlu', *{args!r}]\nmain()"
        out = without(modules, code)
        assert out.returncode == 1, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pip install 'nlu[{extra}]'" in lines[0], out.stderr


def test_runtime_parses_without_torch_installed(trained):
    """The ONNX backend on a trained model, with torch impossible to import."""
    code = (f"import nlu\np = nlu.load({str(trained.model_dir)!r})\n"
            "print(p.backend, p.parse('flights from boston').intent)")  # fmt: skip
    out = without(["torch", "torchcrf", "pytorch_lightning", "datasets"], code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "onnx"
    missing = without(
        ["torch"], f"import nlu\nnlu.load({str(trained.model_dir)!r}, backend='torch')"
    )
    assert "pip install 'nlu[torch]'" in missing.stderr and "nlu export" not in missing.stderr


def test_auto_without_a_graph_or_torch_suggests_either(parser, tmp_path):
    from nlu import archive

    model = archive.save(tmp_path / "m", parser.config, parser.vocabs, parser.model)  # no graph
    missing = without(["torch"], f"import nlu\nnlu.load({str(model)!r})")
    assert "pip install 'nlu[torch]', or export the model (nlu export" in missing.stderr
