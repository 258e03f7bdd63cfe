"""`nlu calibrate [--model DIR] --data atis [--split valid]`: refit the intent temperature."""

from __future__ import annotations

from typing import Annotated

import typer

from cli._output import DataName, ModelDir, data_notes, default_model, user_errors


def calibrate(
    model: ModelDir = None,
    data: DataName = "atis",
    split: Annotated[
        str, typer.Option(help="Held-out split to fit on (never the test split you report).")
    ] = "valid",
) -> None:
    """Fit the intent confidences' temperature on held-out data and write it into the model.

    `nlu train` does this on dev after training; this is for models trained before it did
    (format 1), or to fit on other held-out data. No prediction changes, only confidences.
    """
    from nlu import archive
    from nlu.data.seqio import read_seqio, resolve_split
    from nlu.eval.calibration import calibrate_intents
    from nlu.inference import onnx_engine
    from nlu.parser import Parser

    with user_errors(), data_notes():
        model_dir = archive.resolve_model_dir(default_model(model))
        parser = Parser.load(model_dir, backend="torch")  # the temperature lives in the weights
        exported = (model_dir / onnx_engine.RUNTIME_FILE).is_file()
        examples = read_seqio(resolve_split(data, split))
        before = float(parser.model.intent_head.temperature)
        temperature = calibrate_intents(parser, examples)
        info = {
            **parser.info,
            "intent_temperature": round(temperature, 4),
            "intent_temperature_fitted_on": f"{data}/{split}",
        }
        extra = None
        if exported:  # the graph's runtime.json holds the temperature too: write it again,
            # and choose its default precision again, on the held-out data, as training does
            from nlu.export import write_onnx

            def extra(directory):
                return write_onnx(parser.model, directory, examples)

        archive.save(model_dir, parser.config, parser.vocabs, parser.model, info, extra=extra)
    typer.echo(
        f"{model_dir}: intent temperature {before:.4f} -> {temperature:.4f} "
        f"(fitted on {data}/{split}, {len(examples)} utterances)"
    )
