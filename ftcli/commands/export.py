"""``ftcli export ckpt=PATH format=onnx|torchscript``: a deployable model plus its preprocessing.

Writes ``<checkpoint>.onnx`` (dynamic batch dimension) or ``<checkpoint>.torchscript.pt`` and,
beside it, ``<file>.json`` with what a deployment needs to feed it: class names, input size,
resize, mean/std for images; for a text model, the ``(N, 2, L)`` int64 token ids and mask (dynamic
batch and length), its tokenizer, ``max_length`` and pad id. Success is reported only after the
exported file, loaded back by its own runtime (onnxruntime, torch.jit), reproduced the PyTorch logits
on a sample batch (texts: padded, and longer than the batch it was exported with); the maximum
absolute difference is printed and stored.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftcli.command_line.key_value_args import Key, boolean, parse, usage, wants_help
from ftcli.errors import ConfigError, ExportError, unknown_name
from ftcli.runs import checkpoint_schema
from ftcli.runs.output_folder import check_named, results_folder
from ftcli.runs.trained_model import TrainedModel, checkpoint_path
from ftcli.ui import console

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
INPUT_NAME, TEXT_INPUT_NAME, OUTPUT_NAME = "image", "tokens", "logits"
# A text model is exported with a padded batch of two and checked on a batch of three whose longest text is
# longer: batch and length must both really be dynamic, and the mask must be honoured.
EXAMPLE_TEXTS = ("a short text", "a longer text, so that the short one is padded")
CHECK_TEXTS = (
    "three words here",
    "one",
    "a text longer than any the model was exported with, to check that any length is taken",
)
SUMMARY = "write the model as ONNX or TorchScript with its preprocessing, checked against PyTorch"
KEYS = (
    Key("ckpt", "the checkpoint of a training run (<run>/checkpoints/best.ckpt)", required=True),
    Key("format", "onnx (dynamic batch; needs pip install 'ftcli[export]') or torchscript", default="onnx"),
    Key("out", "output folder (default: <run>/export, or export-N when it holds this export already)"),
    Key(
        "atol",
        "largest allowed |exported - PyTorch| on the check batch, plus rtol x |logit|",
        default=1e-4,
        kind=float,
    ),
    Key("rtol", "relative part of the allowed difference", default=1e-4, kind=float),
    Key("opset", "ONNX opset version (default: torch.onnx's)", kind=int),
    Key(
        "merge",
        "a LoRA checkpoint: true merges the adapters into the weights and exports the network; false "
        "writes the PEFT adapter folder (adapter_config.json, adapter_model.safetensors) and the head",
        default=True,
        kind=boolean,
    ),
)
MERGE_ATOL = 1e-4  # largest |merged - adapted| logit allowed when adapters are merged into the weights


@dataclass
class ExportResult:
    """What was written and how closely it reproduces PyTorch."""

    model_file: Path
    meta_file: Path
    max_abs_diff: float
    check_batch: int


def main(args: list[str]) -> int:
    """Entry point of ``ftcli export``."""
    if wants_help(args):
        print(usage("export", SUMMARY, KEYS))
        return 0
    options = parse("export", args, KEYS).values
    fmt = str(options["format"]).lower()
    if fmt not in FORMATS:
        raise unknown_name("export format", fmt, list(FORMATS), key="format")
    path = checkpoint_path(options["ckpt"])
    merge = options["merge"] is not False
    writes = (
        (f"{path.stem}{FORMATS[fmt]}", f"{path.stem}{FORMATS[fmt]}.json") if merge else adapter_files(path)
    )
    check_named(options["out"], writes)  # before the work: out= must not hold an earlier export
    if fmt == "onnx" and merge:
        require_onnx()
    from ftcli.runs import trained_model

    model = trained_model.load(path)
    # <run>/export, else the first of export-2, export-3 ... without this checkpoint's file of this format
    out = results_folder(options["out"], model.run_dir / "export", writes, share=True)
    if not merge:
        written = write_adapter_folder(model, out)
        console.console.print(
            "[green]adapters written[/green] (PEFT format, not merged):\n  "
            + "\n  ".join(str(p) for p in written),
            highlight=False,
        )
        return 0
    result = export(model, fmt, out, options)
    console.console.print(
        f"[green]export ok[/green] · {fmt} · max |{fmt} - pytorch| = {result.max_abs_diff:.2e} "
        f"on a batch of {result.check_batch}",
        highlight=False,
    )
    console.console.print(
        f"written: {result.model_file}\n         {result.meta_file}", markup=False, highlight=False
    )
    return 0


def require_onnx() -> None:
    """ONNX export is an optional extra: say how to get it rather than fail on an import."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"format=onnx needs the optional package(s) {', '.join(missing)}.",
            "Install them with: pip install 'ftcli[export]'   (or use format=torchscript)",
        )


def export(model: TrainedModel, fmt: str, out: Path, options: dict[str, Any]) -> ExportResult:
    """Write the model and its metadata, then check the file against PyTorch (ExportError if off)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    model_file = out / f"{model.path.stem}{FORMATS[fmt]}"
    example, check = sample_batches(model)
    net = model.net.cpu().eval()
    with torch.no_grad():
        expected = net(check)
    meta = metadata(model, fmt, model_file)
    from ftcli.model.adapters import adapters_of

    if adapters_of(net) is not None:  # export the merged network, checked against the adapted one
        meta["adapters"] = merge_adapters(net, check, expected)
    model_file.with_name(model_file.name + ".data").unlink(missing_ok=True)  # an older external-data file
    if fmt == "onnx":
        write_onnx(net, example, model_file, options["opset"], text=model.reads_text)
        actual = run_onnx(model_file, check, meta["input"]["name"])
    else:
        write_torchscript(net, example, model_file, meta)
        actual = run_torchscript(model_file, check)
    diff = (actual - expected).abs()
    max_abs_diff = float(diff.max())
    allowed = float(options["atol"]) + float(options["rtol"]) * expected.abs()
    meta["check"] = {
        "batch": len(check),
        "max_abs_diff": max_abs_diff,
        "atol": options["atol"],
        "rtol": options["rtol"],
    }
    meta_file = model_file.with_name(model_file.name + ".json")
    meta_file.write_text(json.dumps(meta, indent=2))
    if not bool((diff <= allowed).all()):
        raise ExportError(
            f"The {fmt} export of {model.path} does not reproduce PyTorch: "
            f"max |difference| {max_abs_diff:.3e} "
            f"(allowed {options['atol']:g} + {options['rtol']:g} x |logit|). The file is kept: {model_file}",
            "Try another opset (opset=...) or format; report it with FTCLI_DEBUG=1 output if it persists.",
        )
    return ExportResult(model_file, meta_file, max_abs_diff, len(check))


def merge_adapters(net: Any, check: Any, expected: Any) -> dict[str, Any]:
    """Merge a LoRA network's adapters into its weights (PEFT ``merge_and_unload``) and check that the
    merged network computes what the adapted one did (``MERGE_ATOL``); what was merged, for the metadata."""
    import torch

    from ftcli.model.adapters import adapters_of, merged

    stored = dict(adapters_of(net).options.to_dict())
    merged(net)
    with torch.no_grad():
        diff = float((net(check) - expected).abs().max())
    if diff > MERGE_ATOL:
        raise ExportError(
            f"Merging the adapters into the weights changed the logits by up to {diff:.3e} "
            f"(allowed {MERGE_ATOL:g}); nothing was exported.",
            "Export the adapters unmerged (merge=false), or report it with FTCLI_DEBUG=1 output.",
        )
    return {"merged": True, "max_abs_diff_merged_vs_adapted": diff, **stored}


def adapter_files(path: Path) -> tuple[str, ...]:
    """What ``merge=false`` writes: the PEFT folder of this checkpoint and its metadata."""
    return (f"{path.stem}-adapter",)


def write_adapter_folder(model: TrainedModel, out: Path) -> list[Path]:
    """``merge=false``: the adapters as a PEFT folder, the head's tensors and the metadata (classes,
    preprocessing, the base model) beside them: everything but the base weights."""
    from safetensors.torch import save_file

    from ftcli.model.adapters import adapters_of, write_peft_folder

    if adapters_of(model.net) is None:
        raise ConfigError(
            f"merge=false writes a LoRA checkpoint's adapters, but {model.path} holds none "
            f"(strategy {model.meta.get(checkpoint_schema.STRATEGY, {}).get('name', '?')}).",
            "Drop merge=false to export the whole network.",
        )
    folder = out / adapter_files(model.path)[0]
    base = str(model.meta[checkpoint_schema.MODEL].get("name"))
    written = write_peft_folder(model.net, folder, base)
    head = {k: v.contiguous() for k, v in model.net.blocks["head"].state_dict().items()}
    save_file(head, str(folder / "head.safetensors"))
    meta = metadata(model, "peft", folder / "adapter_model.safetensors")
    meta["head"] = "head.safetensors: the new head (blocks.head), trained with the adapters"
    meta["adapters"] = dict(model.meta[checkpoint_schema.ADAPTERS])
    (folder / "ftcli.json").write_text(json.dumps(meta, indent=2))
    return [*written, folder / "head.safetensors", folder / "ftcli.json"]


def sample_batches(model: TrainedModel) -> tuple[Any, Any]:
    """The batch the model is exported with and the one it is checked on (one more row, so that the
    batch dimension must really be dynamic): random images, or tokenized texts of several lengths."""
    import torch

    spec = model.transform
    if model.reads_text:
        from ftcli.data.text.batches import batch_of_texts
        from ftcli.data.text.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(spec.tokenizer)
        example = batch_of_texts(tokenizer, EXAMPLE_TEXTS, spec.max_length)
        return example, batch_of_texts(tokenizer, CHECK_TEXTS, spec.max_length)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, 3, spec.crop, spec.crop, generator=generator)
    return example, torch.randn(3, 3, spec.crop, spec.crop, generator=generator)


def metadata(model: TrainedModel, fmt: str, model_file: Path) -> dict[str, Any]:
    """Everything needed to feed the exported model without ftcli."""
    from ftcli import __version__

    spec = model.transform
    return {
        "format": fmt,
        "file": model_file.name,
        "class_names": model.class_names,
        "input": text_input(spec) if model.reads_text else image_input(spec),
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["batch", model.num_classes],
            "meaning": "logits (softmax for probabilities)",
        },
        "transform": spec.to_dict(),
        "model": model.meta[checkpoint_schema.MODEL].get("name"),
        "source_checkpoint": str(model.path.resolve()),
        "ftcli_version": __version__,
    }


def image_input(spec: Any) -> dict[str, Any]:
    """How to feed an image model: an NCHW float batch, preprocessed as in training (``TransformSpec``)."""
    return {
        "name": INPUT_NAME,
        "shape": ["batch", 3, spec.crop, spec.crop],
        "dtype": "float32",
        "layout": "NCHW, RGB",
        "preprocessing": (
            f"RGB; resize the shorter side to {spec.resize} ({spec.interpolation}); centre crop "
            f"{spec.crop}x{spec.crop}; scale to [0, 1]; subtract mean and divide by std per channel"
        ),
    }


def text_input(spec: Any) -> dict[str, Any]:
    """How to feed a text model: one int64 ``(N, 2, L)`` tensor, token ids and attention mask
    (``ftcli.data.text.batches``), tokenized by the checkpoint's tokenizer (``TextSpec``)."""
    from ftcli.data.text.tokenizer import load_tokenizer, pad_id

    pad = pad_id(load_tokenizer(spec.tokenizer))
    return {
        "name": TEXT_INPUT_NAME,
        "shape": ["batch", 2, "tokens"],
        "dtype": "int64",
        "layout": "x[:, 0] token ids, x[:, 1] attention mask (1 = token, 0 = padding), right padded",
        "preprocessing": (
            f"tokenize each text with the tokenizer in {spec.tokenizer} (transformers AutoTokenizer, its "
            f"special tokens added); truncate to {spec.max_length} tokens; right-pad the ids with {pad} to "
            "the batch's longest text, the mask 0 there"
        ),
        "tokenizer": spec.tokenizer,
        "max_length": spec.max_length,
        "pad_id": pad,
    }


def write_onnx(net: Any, example: Any, out: Path, opset: int | None, text: bool = False) -> None:
    """torch.onnx's exporter with a dynamic batch dimension (and, for texts, a dynamic length)."""
    import torch

    batch = torch.export.Dim("batch", min=1)
    dims = {0: batch, 2: torch.export.Dim("tokens", min=1)} if text else {0: batch}
    kwargs = {"opset_version": opset} if opset else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                net,
                (example,),
                str(out),
                dynamo=True,
                external_data=False,  # one self-contained file (these weights are far below 2 GB)
                input_names=[TEXT_INPUT_NAME if text else INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=(dims,),
                verbose=False,
                **kwargs,
            )
        except Exception as exc:  # the exporter raises many types; the first line says what failed
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(f"torch.onnx could not export the model: {first}") from exc


def run_onnx(path: Path, batch: Any, input_name: str = INPUT_NAME) -> Any:
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run([OUTPUT_NAME], {input_name: batch.numpy()})
    return torch.from_numpy(output)


def write_torchscript(net: Any, example: Any, out: Path, meta: dict[str, Any]) -> None:
    """A traced module; the metadata also travels inside it as the extra file ``ftcli.json``."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated upstream in favour of torch.export
        try:
            traced = torch.jit.trace(net, example)
        except Exception as exc:  # the tracer raises many types; the first line says what failed
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(f"torch.jit could not trace the model: {first}") from exc
        torch.jit.save(traced, str(out), _extra_files={"ftcli.json": json.dumps(meta)})


def run_torchscript(path: Path, batch: Any) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return loaded(batch)
