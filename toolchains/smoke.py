"""Smoke test of an installed seedcore (no torch, no source tree): the native decoder
picks the machine's SIMD kernels (NEON on aarch64, AVX2 on x86-64 when present) and
gives the numpy reference decoders' bits, in memory and streamed to .safetensors,
for prng, q8 and q4 seeds. Run by toolchains/emulate-pi.sh inside the emulated arm64
root and by cibuildwheel on every wheel (pyproject.toml, [tool.cibuildwheel])."""
import os
import platform
import tempfile

import numpy as np

import seedcore

f = seedcore.cpu_features()
print("machine", platform.machine(), "cpu features", f)
if platform.machine() in ("aarch64", "arm64"):
    assert f["isa"] == "neon", f
rng = np.random.default_rng(0)
sd = {"fc1.weight": (0.05 * rng.standard_normal((48, 64))).astype(np.float32),
      "fc1.bias": (0.01 * rng.standard_normal(48)).astype(np.float32),
      "fc2.weight": (0.05 * rng.standard_normal((10, 48))).astype(np.float32)}
tmp = tempfile.mkdtemp()
for codec in ("prng", "q8", "q4"):
    path = os.path.join(tmp, f"smoke-{codec}.seed")
    seedcore.extract(sd, codec=codec, progress=False).save(path)
    ref = seedcore.load(path).decode_all_reference()       # numpy reference decoders
    model = seedcore.assemble(path)                        # native SIMD kernels, in memory
    for impl in ("auto", "scalar"):
        got = seedcore.assemble(path, impl=impl)
        assert all(np.array_equal(got[k], ref[k]) for k in ref), (codec, impl)
    out = os.path.join(tmp, f"smoke-{codec}.safetensors")
    seedcore.assemble(path, out=out)                       # streamed, bounded RAM
    model.save(out[:-12] + "mem.safetensors")
    with open(out, "rb") as a, open(out[:-12] + "mem.safetensors", "rb") as b:
        assert a.read() == b.read(), codec
    err = max(float(np.abs(model[k] - sd[k]).max()) for k in sd)
    print(f"{codec}: {os.path.getsize(path)} bytes, native == reference, streamed == in-memory, "
          f"max |error| {err:.4f}")
print("SMOKE OK")
