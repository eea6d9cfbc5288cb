#!/usr/bin/env python3
"""The comparison table (issue 5 part 2): seeds against the usual ways of making a
model small, one table per model (the MNIST LeNet, MobileNetV2, all-MiniLM-L6-v2).

Columns: file size, ratio to the fp32 file, bits per weight (8 x bytes / the number
of float values in the fp32 file), fidelity, assembly time (median, in this
process) and peak RAM of assembly (a fresh process per row: peak RSS above the
RSS after the imports, as bench/ram.py measures it).

Fidelity:
  LeNet        accuracy on the fixed 1000-image MNIST test split and top-1 agreement
               with the fp32 LeNet (trained 3 epochs on the 4000 training images)
  MobileNetV2  top-1 agreement with the fp32 model on zoo.sample_image_crops(200)
  MiniLM       mean cosine of the sentence embeddings with the fp32 model's on the
               16 fixed sentences of bench/quality.py

Rows: fp32 (raw safetensors), fp16, q8, q4, magnitude pruning at 50/75/90 % stored
sparse (a safetensors file holding, per pruned tensor, a packed bitmask of the kept
positions and the kept values as float16; other tensors float32) without and with
fine-tuning (mask kept), gzip -9 and lzma (preset 6) of the fp32 file, the stats
seed (zero-shot; fine-tuned on 300 samples for the LeNet), prng at 3 / 4 / 4.5 bpw,
the rate-allocated default seed (seedcore.extract(module, example_inputs=...)),
a random initialisation, and for the LeNet a distilled smaller student.

    python bench/compare.py [--quick] [--write] [--plots DIR] [--models lenet,mobilenetv2,minilm]

Seeds of MobileNetV2 and MiniLM are cached in bench/out/ (MiniLM: the caches of
bench/minilm_weights.py and bench/quality.py); the measurements go to
bench/out/compare.json as well (bench/rd.py reads them).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import lzma
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from seedcore.extract import DEFAULT_TARGET_BPW

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SECTION = "compare"
MiB = 2**20
SPARSITIES = (0.5, 0.75, 0.9)
PRNG_BITS = (3, 4, 4.5)
JSON_PATH = HERE / "out" / "compare.json"
MODELS = ("lenet", "mobilenetv2", "minilm")


# --- sparse storage: bitmask + float16 non-zeros ------------------------------------------------
def prune(tensors: dict, sparsity: float) -> dict:
    """Per-tensor magnitude pruning of every floating tensor of 2+ dimensions:
    {name: boolean keep-mask}, keeping the round((1 - sparsity) * n) largest |w|."""
    masks = {}
    for name, a in tensors.items():
        if a.ndim >= 2 and a.dtype.kind == "f":
            flat = np.abs(a.reshape(-1))
            keep = int(round((1 - sparsity) * flat.size))
            m = np.zeros(flat.size, bool)
            if keep:
                m[np.argpartition(flat, flat.size - keep)[flat.size - keep:]] = True
            masks[name] = m.reshape(a.shape)
    return masks


def save_sparse(path, tensors: dict, masks: dict) -> int:
    """The pruned model as a safetensors file: NAME.mask (np.packbits of the keep-mask,
    row-major) and NAME.nz (the kept values, float16) per pruned tensor, the others as
    they are; shapes in the metadata. Returns the file size."""
    from seedcore.model import write_safetensors

    out, shapes = {}, {}
    for name, a in tensors.items():
        if name in masks:
            m = masks[name].reshape(-1)
            out[name + ".mask"] = np.packbits(m)
            out[name + ".nz"] = a.reshape(-1)[m].astype(np.float16)
            shapes[name] = list(a.shape)
        else:
            out[name] = a
    return write_safetensors(path, out, {"sparse_shapes": json.dumps(shapes, separators=(",", ":"))})


def load_sparse(path) -> dict:
    """Dense float32 tensors from a save_sparse file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        shapes = json.loads(f.metadata()["sparse_shapes"])
        raw = {k: f.get_tensor(k) for k in f.keys()}
    out = {}
    for name, a in raw.items():
        base, _, kind = name.rpartition(".")
        if base in shapes:
            if kind == "nz":
                continue
            n = int(np.prod(shapes[base]))
            w = np.zeros(n, np.float32)
            w[np.unpackbits(a, count=n).view(bool)] = raw[base + ".nz"]
            out[base] = w.reshape(shapes[base])
        else:
            out[name] = a
    return out


def load_compressed(path) -> dict:
    """Tensors from a gzip / lzma-compressed safetensors file."""
    from safetensors.numpy import load

    opener = gzip.open if str(path).endswith(".gz") else lzma.open
    with opener(path, "rb") as f:
        return load(f.read())


def load_fp32(path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(path))


def loader(mode: str):
    """The function that assembles a file of this kind into its weights."""
    import seedcore
    return {"fp32": load_fp32, "sparse": load_sparse, "compressed": load_compressed,
            "seed": lambda p: seedcore.assemble(str(p))}[mode]


# --- peak RAM of one assembly in a fresh process (bench/ram.py's measurement) ------------------
def child(mode: str, src: str) -> dict:
    import ram

    import seedcore  # noqa: F401  (baseline: everything a mode imports)
    import safetensors.numpy  # noqa: F401
    with open("/proc/self/clear_refs", "w") as f:  # peak RSS := current RSS
        f.write("5")
    base = ram._status("VmRSS")
    t0 = time.perf_counter()
    held = loader(mode)(src)
    seconds = time.perf_counter() - t0
    peak = ram._status("VmHWM")
    del held
    return {"baseline": base, "peak": peak, "above": peak - base, "seconds": seconds}


def peak_ram(mode: str, src) -> float:
    """MiB above the baseline of a fresh process that assembles `src` with `mode`."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, str(src)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])["above"] / MiB


# --- the models ---------------------------------------------------------------------------------
class Bench:
    """One model: its torch module, the fp32 file, fidelity of weights (torch) or of an
    assembled seed (native executor), and how to extract / fine-tune it."""

    name = ""
    fid_keys = ("fid",)

    def __init__(self, workdir: Path, quick: bool):
        self.workdir, self.quick = workdir, quick

    # fp32 tensors, as a {name: array} dict and as a file
    def fp32(self) -> tuple[dict, Path]:
        """Default: the floating tensors of self.module's state dict, written to
        compare-NAME-fp32.safetensors in the work folder (once per run)."""
        if not hasattr(self, "_fp32"):
            from seedcore.model import write_safetensors
            t = {k: v.detach().numpy().copy() for k, v in self.module.state_dict().items()
                 if v.dtype.is_floating_point}
            p = self.workdir / f"compare-{self.name}-fp32.safetensors"
            write_safetensors(p, t)
            self._fp32 = (t, p)
        return self._fp32

    def n_params(self) -> int:
        return sum(int(a.size) for a in self.fp32()[0].values() if a.dtype.kind == "f")

    def torch_module(self, tensors: dict):
        """A copy of the module with these weights (keys the module lacks are ignored)."""
        import torch

        m = copy.deepcopy(self.module)
        own = m.state_dict()
        sd = {k: torch.as_tensor(np.asarray(v)).to(own[k].dtype) for k, v in tensors.items() if k in own}
        missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
        if missing:
            raise RuntimeError(f"{self.name}: weights miss {missing[:3]}")
        m.load_state_dict(sd, strict=False)
        return m.eval()

    def fidelity_tensors(self, tensors: dict) -> dict:
        import torch

        with torch.no_grad():
            return self.fidelity_outputs(self.torch_forward(self.torch_module(tensors)))

    def fidelity_model(self, model) -> dict:
        return self.fidelity_outputs(self.native_forward(model))

    def seed_path(self, tag: str) -> Path:
        from _common import encoder_digest

        return self.workdir / f"compare-{self.name}-{tag}-{encoder_digest()}.seed"

    def extract(self, tag: str, **kw) -> tuple[Path, float | None]:
        """A captured seed (graph + weights) of the module, cached by tag."""
        import seedcore

        path = self.seed_path(tag)
        if not path.exists():
            print(f"[compare] encoding {self.name} {tag} -> {path}", file=sys.stderr)
            seedcore.extract(self.module, example_inputs=self.example_inputs(), progress=False, **kw).save(path)
        return path, seedcore.load(path).provenance.get("encode_seconds")

    def allocated(self, target: float) -> tuple[Path, float | None]:
        """Rate allocation at `target` bpw with gptq (extract's default with example_inputs)."""
        return self.extract(f"alloc{target:g}", target_bpw=target, calibration=self.calibration())

    def codec_seed(self, codec: str, bits=None) -> tuple[Path, float | None]:
        tag = f"{codec}{bits:g}" if bits is not None else codec
        return self.extract(tag, codec=codec, bits=bits)

    def default_seed(self) -> tuple[Path, float | None]:
        path, enc = self.extract("default", calibration=self.calibration())
        return path, enc


class LeNetBench(Bench):
    name = "lenet"
    fid_keys = ("acc", "agree")

    def __init__(self, workdir, quick):
        super().__init__(workdir, quick)
        import torch

        import _common
        self.module = _common.trained_lenet(epochs=3)
        self.Xtr, self.ytr, self.Xte, self.yte = _common.mnist_split()
        with torch.no_grad():
            self.ref = self.module(torch.as_tensor(self.Xte)).argmax(1).numpy()

    def example_inputs(self):
        import torch
        return (torch.as_tensor(self.Xte[:2]),)

    def calibration(self):
        import torch
        return (torch.as_tensor(self.Xtr[:256]),)

    def torch_forward(self, m):
        import torch
        return m(torch.as_tensor(self.Xte)).numpy()

    def native_forward(self, model):
        return model(self.Xte)

    def fidelity_outputs(self, logits) -> dict:
        pred = np.asarray(logits).argmax(1)
        return {"acc": float((pred == self.yte).mean()), "agree": float((pred == self.ref).mean())}

    def finetune_pruned(self, tensors: dict, masks: dict) -> dict:
        """Adam (lr 1e-3, batch 64) on the 4000 training images, the mask re-applied after
        every step: 2 epochs (125 steps each); --quick: 30 steps."""
        import torch
        import torch.nn.functional as F
        m = self.torch_module(tensors).train()
        tmask = {k: torch.as_tensor(v) for k, v in masks.items()}
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        X, y = torch.as_tensor(self.Xtr), torch.as_tensor(self.ytr)
        steps = 30 if self.quick else 2 * (len(X) // 64)
        order = torch.cat([torch.randperm(len(X), generator=g) for _ in range(3)])
        for s in range(steps):
            idx = order[s * 64:(s + 1) * 64]
            opt.zero_grad()
            F.cross_entropy(m(X[idx]), y[idx]).backward()
            opt.step()
            with torch.no_grad():
                for k, p in m.named_parameters():
                    if k in tmask:
                        p.mul_(tmask[k])
        return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}

    FINETUNE_NOTE = ("LeNet: Adam lr 1e-3, batch 64, 2 epochs (250 steps) on the 4000 training images "
                     "with cross-entropy, the mask re-applied after every step")


class StudentNet:
    """A narrower LeNet: conv5x5(4) -> pool -> conv5x5(8) -> pool -> 32 -> 10."""

    @staticmethod
    def make():
        import torch.nn as nn
        return nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(8 * 5 * 5, 32), nn.ReLU(), nn.Linear(32, 10))


def train_student(b: LeNetBench, epochs: int):
    """Knowledge distillation: KL to the teacher's soft labels at T = 4 (x T^2, weight 0.7)
    plus cross-entropy on the labels (0.3); Adam lr 2e-3, batch 64, on the 4000 images."""
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    net = StudentNet.make()
    X, y = torch.as_tensor(b.Xtr), torch.as_tensor(b.ytr)
    with torch.no_grad():
        soft = F.log_softmax(b.module(X) / 4, 1)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), 64):
            idx = order[i:i + 64]
            out = net(X[idx])
            kd = F.kl_div(F.log_softmax(out / 4, 1), soft[idx], log_target=True, reduction="batchmean") * 16
            loss = 0.7 * kd + 0.3 * F.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


class MobileNetBench(Bench):
    name = "mobilenetv2"
    fid_keys = ("agree",)

    def __init__(self, workdir, quick):
        super().__init__(workdir, quick)
        import torch

        from seedcore import zoo
        self.module = zoo.load_mobilenet_v2().eval()
        self.x = zoo.sample_image_crops(16 if quick else 200)
        with torch.no_grad():
            self.ref = self.module(torch.as_tensor(self.x)).numpy().argmax(1)

    def example_inputs(self):
        import torch
        return (torch.as_tensor(self.x[:2]),)

    def calibration(self):
        # the crops bench/quality.py calibrates on: other crops than the judged ones
        import torch

        from seedcore import zoo
        from quality import MOBILENET_CALIBRATION
        return (torch.as_tensor(zoo.sample_image_crops(8 if self.quick else MOBILENET_CALIBRATION, seed=1)),)

    def torch_forward(self, m):
        import torch
        return m(torch.as_tensor(self.x)).numpy()

    def native_forward(self, model):
        return model(self.x, threads=0)

    def fidelity_outputs(self, logits) -> dict:
        return {"agree": float((np.asarray(logits).argmax(1) == self.ref).mean())}

    def finetune_pruned(self, tensors: dict, masks: dict) -> dict:
        """Distillation on other crops: KL to the original's softmax (batch norm frozen in
        eval mode), Adam lr 1e-4, batch 8; 25 steps over sample_image_crops(64, seed=1)."""
        import torch

        from seedcore import zoo
        xs = torch.as_tensor(zoo.sample_image_crops(8 if self.quick else 64, seed=1))
        return distill(self.module, self.torch_module(tensors), masks, xs, steps=2 if self.quick else 25,
                       batch=8, lr=1e-4, loss="kl")

    FINETUNE_NOTE = ("MobileNetV2: distillation of the original's outputs (KL of the softmax) on 64 other "
                     "crops (`sample_image_crops(64, seed=1)`), Adam lr 1e-4, batch 8, 25 steps, batch norm "
                     "frozen, the mask re-applied after every step")


def distill(teacher, m, masks: dict, inputs, steps: int, batch: int, lr: float, loss: str) -> dict:
    """Fine-tune `m` (mask kept) to reproduce `teacher`'s outputs on `inputs` (a tensor or a
    tuple of tensors of the same batch); the weights as numpy."""
    import torch
    import torch.nn.functional as F
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    with torch.no_grad():
        target = teacher(*inputs)
    tmask = {k: torch.as_tensor(v) for k, v in masks.items()}
    params = [p for k, p in m.named_parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(0)
    n = len(inputs[0])
    for s in range(steps):
        idx = torch.randperm(n, generator=g)[:batch]
        out = m(*(t[idx] for t in inputs))
        if loss == "kl":
            err = F.kl_div(F.log_softmax(out, 1), F.log_softmax(target[idx], 1), log_target=True,
                           reduction="batchmean")
        else:
            err = (1 - F.cosine_similarity(out, target[idx], dim=1)).mean()
        opt.zero_grad()
        err.backward()
        opt.step()
        with torch.no_grad():
            for k, p in m.named_parameters():
                if k in tmask:
                    p.mul_(tmask[k])
    return {k: v.detach().numpy().copy() for k, v in m.state_dict().items()}


class MiniLMBench(Bench):
    name = "minilm"
    fid_keys = ("fid",)

    def __init__(self, workdir, quick):
        super().__init__(workdir, quick)
        import torch

        from seedcore import zoo
        from quality import SENTENCES
        self.module, self.tokenize = zoo.load_minilm()
        ids, mask = self.tokenize(SENTENCES[:4] if quick else SENTENCES)
        self.ids, self.mask = ids.numpy(), mask.numpy()
        with torch.no_grad():
            self.ref = self.module(ids, mask).numpy().astype(np.float64)
        self._graph = None

    def fp32(self):
        if not hasattr(self, "_fp32"):
            import _common
            p = _common.minilm_path()
            self._fp32 = (load_fp32(p), p)
        return self._fp32

    def graph(self) -> dict:
        """The captured graph, for the weights-only MiniLM seeds cached by bench/minilm_weights.py."""
        if self._graph is None:
            import seedcore
            self._graph = seedcore.extract(self.module, codec="raw", progress=False,
                                           **self._capture_kw(self.example_inputs())).graph
        return self._graph

    @staticmethod
    def _capture_kw(inputs) -> dict:
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
        return {"example_inputs": inputs, "input_names": ["input_ids", "attention_mask"],
                "output_names": ["sentence_embedding"], "dynamic_axes": axes}

    def example_inputs(self):
        import torch
        return (torch.as_tensor(self.ids[:2]), torch.as_tensor(self.mask[:2]))

    def torch_forward(self, m):
        import torch
        return m(torch.as_tensor(self.ids), torch.as_tensor(self.mask)).numpy()

    def native_forward(self, model):
        if model.graph is None:
            model.graph = self.graph()
        return model.run({"input_ids": self.ids, "attention_mask": self.mask})["sentence_embedding"]

    def fidelity_outputs(self, emb) -> dict:
        e = np.asarray(emb, np.float64)
        cos = (e * self.ref).sum(1) / np.linalg.norm(e, axis=1) / np.linalg.norm(self.ref, axis=1)
        return {"fid": float(cos.mean())}

    def codec_seed(self, codec, bits=None):
        import _common
        return _common.minilm_seed(codec, bits)

    def default_seed(self):
        from quality import minilm_allocated
        path, seconds, _ = minilm_allocated(self.module, self.tokenize, DEFAULT_TARGET_BPW)
        return path, seconds

    def allocated(self, target):
        from quality import minilm_allocated, minilm_allocated_path
        path = minilm_allocated_path(target)
        if not path.exists() and target > 3.0:  # 8-17 minutes per encode on this machine: only cached
            raise FileNotFoundError(path)        # ones (at <= 3 bpw extract refuses at once: infeasible)
        path, seconds, _ = minilm_allocated(self.module, self.tokenize, target)
        return path, seconds

    def finetune_pruned(self, tensors: dict, masks: dict) -> dict:
        """Distillation on the 48 calibration sentences: 1 - cosine to the original's
        embeddings, Adam lr 1e-4, batch 16, 40 steps."""
        from seedcore.demo import CALIBRATION_SENTENCES
        ids, mask = self.tokenize(list(CALIBRATION_SENTENCES[:8] if self.quick else CALIBRATION_SENTENCES))
        out = distill(self.module, self.torch_module(tensors), masks, (ids, mask),
                      steps=2 if self.quick else 40, batch=16, lr=1e-4, loss="cos")
        return {**tensors, **out}  # keys the module lacks (the unused pooler) stay as they were

    FINETUNE_NOTE = ("MiniLM: distillation of the original's sentence embeddings (1 − cosine) on the 48 "
                     "`seedcore.demo.CALIBRATION_SENTENCES`, Adam lr 1e-4, batch 16, 40 steps, the mask "
                     "re-applied after every step")


BENCHES = {"lenet": LeNetBench, "mobilenetv2": MobileNetBench, "minilm": MiniLMBench}


# --- the rows -----------------------------------------------------------------------------------
class Table:
    def __init__(self, b: Bench, repeats: int, ram_for):
        self.b, self.repeats, self.ram_for = b, repeats, ram_for
        self.rows: list[dict] = []
        t, p = b.fp32()
        self.fp32_bytes, self.n = p.stat().st_size, b.n_params()

    def add(self, what: str, kind: str, nbytes, fid: dict, asm_s=None, ram=None, **extra) -> dict:
        import _common
        r = {"what": what, "kind": kind, "bytes": nbytes, **fid, "asm_s": asm_s, "ram_mib": ram, **extra}
        if nbytes is not None:
            r.update(ratio=self.fp32_bytes / nbytes, bpw=8 * nbytes / self.n)
        self.rows.append(r)
        print(f"[compare] {self.b.name}: {what}: " + ", ".join(
            f"{k}={v:.4g}" for k, v in r.items() if isinstance(v, float)), file=sys.stderr)
        _common.check_finite(self.b.name, [r], list(self.b.fid_keys) + (["ratio", "bpw"] if nbytes else []))
        return r

    def timed(self, fn):
        """Median seconds of `fn` over the repeats (None with repeats = 0: not timed)."""
        import _common
        if self.repeats <= 0:
            return None
        return _common.median_time(fn, self.repeats, warmup=1)

    def ram(self, kind: str, mode: str, src):
        return peak_ram(mode, src) if self.ram_for(kind) else None

    def seed_row(self, what, kind, path, enc=None):
        import seedcore
        model = seedcore.assemble(str(path))
        return self.add(what, kind, path.stat().st_size, self.b.fidelity_model(model),
                        self.timed(lambda: seedcore.assemble(str(path))), self.ram(kind, "seed", path),
                        encode_s=enc, file=str(path), load="seed")


def build(b: Bench, repeats: int, ram_for, finetune: bool = True) -> Table:
    T = Table(b, repeats, ram_for)
    tensors, fp32_path = b.fp32()
    T.add("fp32 (raw safetensors)", "fp32", T.fp32_bytes, b.fidelity_tensors(tensors),
          T.timed(lambda: load_fp32(fp32_path)), T.ram("fp32", "fp32", fp32_path), file=str(fp32_path), load="fp32")
    quant_rows(T)
    prune_rows(T, finetune)
    lossless_rows(T)
    stats_rows(T)
    prng_rows(T)
    T.seed_row(f"**default seed**: rate allocation at {DEFAULT_TARGET_BPW:g} bpw (ecq among the candidates, gptq, "
               "sequential, bias correction)", "default", *b.default_seed())
    random_row(T)
    if isinstance(b, LeNetBench):
        student_row(T)
    return T


def quant_rows(T: Table) -> None:
    b = T.b
    T.seed_row("fp16 (seed, raw float16)", "fp16", *b.codec_seed("raw", 16))
    T.seed_row("q8 (Q8_0)", "q8", *b.codec_seed("q8"))
    T.seed_row("q4 (Q4_0)", "q4", *b.codec_seed("q4"))


def prng_rows(T: Table) -> None:
    for bits in PRNG_BITS:
        T.seed_row(f"prng {bits:g} bpw", f"prng{bits:g}", *T.b.codec_seed("prng", bits))


def prune_rows(T: Table, finetune: bool = True) -> None:
    b = T.b
    tensors = b.fp32()[0]
    for s in SPARSITIES:
        tag = f"prune{int(100 * s)}"
        masks = prune(tensors, s)
        pruned = {k: np.where(masks[k], v, 0).astype(np.float32) if k in masks else v for k, v in tensors.items()}
        p = b.workdir / f"compare-{b.name}-{tag}.safetensors"
        save_sparse(p, pruned, masks)
        dec = load_sparse(p)  # what the file holds (float16 non-zeros)
        T.add(f"pruned {int(100 * s)} %, sparse", tag, p.stat().st_size, b.fidelity_tensors(dec),
              T.timed(lambda: load_sparse(p)), T.ram(tag, "sparse", p), sparsity=s, file=str(p), load="sparse")
        if not finetune:
            continue
        tuned = b.finetune_pruned(dec, masks)
        tuned = {k: tuned[k].astype(v.dtype) for k, v in tensors.items()}
        pt = b.workdir / f"compare-{b.name}-{tag}-ft.safetensors"
        save_sparse(pt, tuned, masks)
        T.add(f"pruned {int(100 * s)} %, sparse, fine-tuned", f"{tag}-ft", pt.stat().st_size,
              b.fidelity_tensors(load_sparse(pt)), T.timed(lambda: load_sparse(pt)), None, sparsity=s,
              file=str(pt), load="sparse")


def lossless_rows(T: Table) -> None:
    b = T.b
    fp32_path = b.fp32()[1]
    for ext, opener, kw in ((".gz", gzip.open, {"compresslevel": 9}), (".xz", lzma.open, {"preset": 6})):
        p = b.workdir / f"compare-{b.name}-fp32.safetensors{ext}"
        if not p.exists() or p.stat().st_mtime < fp32_path.stat().st_mtime:
            with opener(p, "wb", **kw) as f:
                f.write(fp32_path.read_bytes())
        kind = "gzip" if ext == ".gz" else "lzma"
        T.add(f"{kind} of the fp32 file (lossless)", kind, p.stat().st_size,
              {k: T.rows[0][k] for k in b.fid_keys}, T.timed(lambda: load_compressed(p)),
              T.ram(kind, "compressed", p), file=str(p), load="compressed")


def stats_rows(T: Table) -> None:
    import seedcore
    b = T.b
    stats_path, enc = b.codec_seed("stats")
    T.seed_row("stats seed, zero-shot", "stats", stats_path, enc)
    if isinstance(b, LeNetBench):
        from seedcore import Finetune
        data = (b.Xtr[:300], b.ytr[:300])
        t0 = time.perf_counter()
        m = seedcore.assemble(str(stats_path), data=data, finetune=Finetune(steps=200), progress=False)
        T.add("stats seed + 300 samples, 200 SGD steps", "stats-ft", stats_path.stat().st_size,
              b.fidelity_model(m), time.perf_counter() - t0, None, file=str(stats_path), load="stats-ft")
        m = seedcore.assemble(str(stats_path), data=data, finetune=Finetune(steps=200), init="random",
                              progress=False)
        T.add("random init + 300 samples, 200 SGD steps (baseline)", "random-ft", None, b.fidelity_model(m))


def random_row(T: Table) -> None:
    import torch
    b = T.b
    torch.manual_seed(0)
    rand = copy.deepcopy(b.module)
    for mod in rand.modules():
        if hasattr(mod, "reset_parameters") and mod is not rand:
            mod.reset_parameters()
    T.add("random init, no data (baseline)", "random", None,
          b.fidelity_tensors({k: v.numpy() for k, v in rand.state_dict().items()}))


def student_row(T: Table) -> None:
    import torch

    from seedcore.model import write_safetensors
    b = T.b
    net = train_student(b, 1 if b.quick else 5)
    st = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    p = b.workdir / "compare-lenet-student.safetensors"
    write_safetensors(p, st)
    with torch.no_grad():
        fid = b.fidelity_outputs(net(torch.as_tensor(b.Xte)).numpy())
    T.add(f"distilled student (fp32, {sum(v.size for v in st.values())} weights)", "student",
          p.stat().st_size, fid, T.timed(lambda: load_fp32(p)), T.ram("student", "fp32", p), file=str(p),
          load="fp32")


# --- rendering ----------------------------------------------------------------------------------
def _size(n) -> str:
    return f"{n} B" if n < 2**10 else f"{n / 2**10:.1f} KiB" if n < MiB else f"{n / MiB:.2f} MiB"


def columns(b_name: str) -> list:
    fid = {"lenet": [("acc", "test accuracy", "{:.1%}"), ("agree", "agreement with fp32", "{:.1%}")],
           "mobilenetv2": [("agree", "top-1 agreement", "{:.1%}")],
           "minilm": [("fid", "mean cosine", "{:.4f}")]}[b_name]
    return [("what", "row", "{}"), ("size", "file size", "{}"), ("ratio", "ratio to fp32", "{:.1f}×"),
            ("bpw", "bits/weight", "{:.2f}"), *fid, ("asm_s", "assembly s (median)", "{:.4f}"),
            ("ram_mib", "peak RAM MiB", "{:.1f}")]


TITLES = {"lenet": "MNIST LeNet", "mobilenetv2": "MobileNetV2 (ImageNet)", "minilm": "all-MiniLM-L6-v2"}


def render_table(name: str, rows: list[dict]) -> str:
    import _common
    shown = [dict(r, size=_size(r["bytes"]) if r.get("bytes") is not None else None) for r in rows]
    return _common.markdown(shown, columns(name))


def describe(name: str, info: dict) -> str:
    return {"lenet": (f"{info['n']} weights, fp32 file {_size(info['fp32_bytes'])}; the teacher: "
                      f"`_common.trained_lenet(epochs=3)` (Adam, 4000 images), test accuracy "
                      f"{info.get('teacher_acc', float('nan')):.1%} on the 1000 test images."),
            "mobilenetv2": (f"{info['n']} weights (the module's float state dict, batch-norm statistics "
                            f"included; seeds fold the batch norms into the convolutions), fp32 file "
                            f"{_size(info['fp32_bytes'])}; {info['n_inputs']} crops judged."),
            "minilm": (f"{info['n']} weights (the package's model.safetensors, unused pooler included), "
                       f"fp32 file {_size(info['fp32_bytes'])}; {info['n_inputs']} sentences judged.")}[name]


def notes(results: dict) -> list[str]:
    out = ["- **Pruning storage**: per-tensor magnitude pruning of every tensor of 2+ dimensions; the "
           "file is a safetensors file with, per pruned tensor, a packed bitmask (1 bit per weight, "
           "`np.packbits`) and the kept values as float16; 1-D tensors float32. The size is that file's "
           "real byte count; assembly = reading it and scattering into dense float32 arrays.",
           "- **Fine-tuning of the pruned models** (same mask, same storage): " + "; ".join(
               BENCHES[n].FINETUNE_NOTE for n in results
               if results[n].get("info", {}).get("finetuned_pruning", True) and not results[n].get("not_run"))
           + ". " + " ".join(
               f"{TITLES[n]}: **not run** in this full run (the distillation runs took over 10 minutes each "
               "on the shared 2-core machine and did not fit the session's time)." for n in results
               if not results[n].get("info", {}).get("finetuned_pruning", True)),
           "- **gzip / lzma**: Python's `gzip` (level 9) and `lzma` (preset 6) of the fp32 safetensors file; "
           "lossless, so their fidelity is fp32's; assembly = decompress + parse.",
           "- **stats fine-tuned**: only for the LeNet (`seedcore.assemble(seed, data=300 samples, "
           "finetune=Finetune(steps=200))`, the native trainer; its assembly time includes the training). "
           "MobileNetV2 and MiniLM: zero-shot only — with no task labels at hand, fine-tuning a "
           "no-knowledge seed of millions of weights back to the original is not a short run.",
           "- **Random init**: the module's layers re-initialised by torch's defaults (seeded); nothing stored.",
           "- **Default seed**: `seedcore.extract(module, example_inputs=..., calibration=...)`: rate "
           f"allocation at {DEFAULT_TARGET_BPW:g} bpw over the default candidates (the fixed-rate codecs and "
           "ecq), with gptq, the sequential pass and bias correction, calibrated on inputs "
           "disjoint from the judged ones (LeNet: "
           "256 training images; MobileNetV2: `sample_image_crops(64, seed=1)`; MiniLM: the 48 "
           "calibration sentences, bench/quality.py's cached seed).",
           "- **Seeds**: MobileNetV2 seeds are captured (graph, batch norms folded); the MiniLM seeds of "
           "fixed codecs are bench/minilm_weights.py's weights-only seeds of the safetensors file, run "
           "with the captured graph. Assembly = `seedcore.assemble(path)` (median of the repeats, "
           "in this process); fidelity from the native executor.",
           "- **Peak RAM**: a fresh process per row (`bench/ram.py`'s measurement: `VmHWM` after "
           "resetting it, minus the RSS after the imports). \"—\" where not measured: the fine-tuned "
           "rows (same file format and size as the row above them), the trained-on-device rows "
           "(training buffers, not assembly) and rows with nothing stored."]
    if "lenet" in results:
        out.append("- **Distilled student**: conv5×5(4) → pool → conv5×5(8) → pool → 32 → 10, trained 5 "
                   "epochs with Adam on the same 4000 images against the teacher's soft labels (KL at T = 4, "
                   "weight 0.7, plus cross-entropy 0.3); stored as fp32 safetensors; its bits per weight count "
                   "the teacher's weights.")
    return out


def render(results: dict, command: str) -> str:
    import _common
    lines = [f"<!-- {SECTION}:begin -->", _common.header("Comparison with quantisation, pruning, gzip and "
                                                         "distillation (issue 5)", command)]
    for name, res in results.items():
        if res.get("not_run"):
            lines += [f"### {TITLES[name]}", "", f"**Not run**: {res['not_run']}", ""]
            continue
        info = res["info"]
        when = (f"Measured {info.get('measured', '?')}; assembly times re-measured in a timing-only pass "
                f"(`--retime`, under the benchmark lock) {info['timed']}." if info.get("timed") else
                f"Measured {info.get('measured', '?')}; assembly times from the same run, on a shared, "
                "loaded machine (not under the benchmark lock).")
        lines += [f"### {TITLES[name]}", "", describe(name, info) + " " + when, ""]
        lines += [render_table(name, res["rows"]), ""]
    lines += ["Notes:", "", *notes(results), "", f"<!-- {SECTION}:end -->"]
    return "\n".join(lines) + "\n"


# --- driver -------------------------------------------------------------------------------------
def run_model(name: str, quick: bool, workdir: Path, repeats: int, ram_for, finetune: bool = True) -> dict:
    t0 = time.perf_counter()
    b = BENCHES[name](workdir, quick)
    T = build(b, repeats, ram_for, finetune)
    info = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "n": T.n, "fp32_bytes": T.fp32_bytes, "seconds": time.perf_counter() - t0,
            "n_inputs": len(getattr(b, "x", getattr(b, "ids", []))), "quick": quick}
    if name == "lenet":
        info["teacher_acc"] = T.rows[0]["acc"]
    import _common
    _common.check_finite(name, T.rows, list(b.fid_keys))
    return {"info": info, "rows": T.rows}


QUICK_RAM = {"fp32", "q4", "prune75", "gzip"}


def retime(measured: dict, repeats: int) -> None:
    """Measures the assembly times of compare.json's rows again, in place, from the files
    the measuring run left in bench/out/ (run under the benchmark lock: a timing-only pass)."""
    import _common
    import seedcore
    from seedcore import Finetune
    for name, res in measured.items():
        if res.get("not_run"):
            continue
        data = None
        for r in res["rows"]:
            if r.get("load") is None:
                continue
            if r["load"] == "stats-ft":  # assembly = decoding + 200 native SGD steps on 300 samples
                if data is None:
                    Xtr, ytr, _, _ = _common.mnist_split()
                    data = (Xtr[:300], ytr[:300])
                t0 = time.perf_counter()
                seedcore.assemble(r["file"], data=data, finetune=Finetune(steps=200), progress=False)
                r["asm_s"] = time.perf_counter() - t0
            else:
                fn = loader(r["load"])
                r["asm_s"] = _common.median_time(lambda: fn(r["file"]), repeats)
            print(f"[compare] {name}: {r['what']}: assembly {r['asm_s']:.4f} s", file=sys.stderr)
        res["info"]["timed"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the LeNet table only, fewer fine-tuning steps, "
                    "peak RAM for a few rows (no MobileNetV2 / MiniLM: their loads alone take longer)")
    ap.add_argument("--write", action="store_true", help="replace the compare section of bench/RESULTS.md")
    ap.add_argument("--plots", default=None, help="(no plots here; accepted for the common interface)")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--repeats", type=int, default=5, help="assembly-time repeats (median; default 5)")
    ap.add_argument("--no-finetune", default="", metavar="MODELS",
                    help="comma-separated models whose pruned models are not fine-tuned (time)")
    ap.add_argument("--retime", action="store_true", help="only measure the assembly times again (from the "
                    "files of the last run and bench/out/compare.json; run it under the benchmark lock)")
    args = ap.parse_args(argv)
    if args.quick and args.write:
        ap.error("--quick numbers never go into RESULTS.md: run --write without --quick")
    import _common
    names = [n for n in args.models.split(",") if n]
    bad = [n for n in names if n not in BENCHES]
    if bad:
        ap.error(f"unknown model(s) {bad}: choose from {','.join(MODELS)}")
    results = {}
    if args.quick:
        with tempfile.TemporaryDirectory() as tmp:
            results["lenet"] = run_model("lenet", True, Path(tmp), 1, lambda kind: kind in QUICK_RAM)
        text = render(results, "python bench/compare.py --quick")
        print(text)
        return 0
    _common.OUT.mkdir(exist_ok=True)
    old = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    if args.retime:
        retime(old, args.repeats)
        JSON_PATH.write_text(json.dumps(old, indent=1))
        names = []
    for name in names:
        results[name] = run_model(name, False, _common.OUT, args.repeats, lambda kind: not kind.endswith("-ft"),
                                  finetune=name not in args.no_finetune.split(","))
        results[name]["info"]["finetuned_pruning"] = name not in args.no_finetune.split(",")
        old = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}  # another run may have added
        old[name] = results[name]
        JSON_PATH.write_text(json.dumps(old, indent=1))
    for name in MODELS:  # the section lists every model; one not measured in this run is said so
        if name not in results:
            results[name] = old.get(name) or {"info": {"n": 0, "fp32_bytes": 0, "n_inputs": 0},
                                              "not_run": "not run (no measurement in bench/out/compare.json)"}
    results = {n: results[n] for n in MODELS}
    text = render(results, "python bench/compare.py --write")
    print(text)
    if args.write:
        _common.write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
