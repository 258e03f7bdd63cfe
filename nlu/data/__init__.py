"""Reading, writing, splitting and checking annotated data: pure Python, no torch, no NumPy.

`formats` reads and writes every supported format (`read_examples`, `write_examples`); `splits`
turns a data config into train / dev / test; `validate`, `stats` and `fetch` back `nlu data`.
"""
