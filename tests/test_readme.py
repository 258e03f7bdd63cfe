"""The Python example of the README runs against a trained model and does what it says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import assert_same_parses

README = Path(__file__).parent.parent / "README.md"
MODEL_PATH = '"runs/latest"'  # the model path the README's example loads


def python_blocks(markdown: str) -> list[str]:
    """The code of every ```python block of a Markdown text."""
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


def run_example(source: str) -> tuple[dict, list]:
    """Execute `source`; return its variables and the value of each expression statement."""
    namespace: dict = {}
    values = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Expr):
            values.append(eval(compile(ast.Expression(node.value), "README.md", "eval"), namespace))
        else:
            exec(compile(ast.Module([node], type_ignores=[]), "README.md", "exec"), namespace)
    return namespace, values


def test_the_readme_example_parses_with_a_trained_model(trained, parser):
    blocks = python_blocks(README.read_text())
    assert len(blocks) == 1, f"expected one ```python block in README.md, found {len(blocks)}"
    example = blocks[0]
    # Only the path literal is replaced: every call and attribute is the README's own.
    assert example.count(MODEL_PATH) == 1, f"expected the example to load {MODEL_PATH}:\n{example}"
    namespace, values = run_example(example.replace(MODEL_PATH, repr(str(trained.model_dir))))
    assert namespace["parse"].text == "book a flight to London"
    (intent, entities), parse_dict = values
    assert intent == "flight" and ("toloc.city_name", "London", 17, 23) in entities
    # to_dict() is what the README's comment says, and what the suite's parser gives.
    assert set(parse_dict) == {"text", "intent", "intent_ranking", "entities"}
    assert_same_parses(parse_dict, parser.parse("book a flight to London").to_dict())
