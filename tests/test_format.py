"""The .seed format: writer layout, the Python reader, and bad input refused by
both the Python and the native reader."""

import json
import os
import struct
import zlib

import numpy as np
import pytest

import seedcore
from make_vectors import _rewrite_header, bad_base, with_metadata
from seedcore import SeedError
from seedcore import format as fmt
from seedcore.assemble import decode_file
from seedcore.format import TensorEntry


def write_base(tmp_path) -> tuple[str, bytes]:
    _, tensors = bad_base()
    path = str(tmp_path / "base.seed")
    fmt.write_seed(path, model_name="m", model_source="s", tensors=tensors)
    with open(path, "rb") as f:
        return path, f.read()


def put(tmp_path, data: bytes, name="x.seed") -> str:
    p = str(tmp_path / name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def refused_by_both(path, match=None, **native_kw):
    """Both readers raise SeedError naming the file; returns the two messages."""
    with pytest.raises(SeedError, match=match) as e1:
        seedcore.load(path)
    with pytest.raises(SeedError, match=match) as e2:
        decode_file(path, impl="scalar", **native_kw)
    for e in (e1, e2):
        assert os.path.basename(path) in str(e.value), str(e.value)
    return str(e1.value), str(e2.value)


# ---- layout


def test_layout_follows_the_spec(tmp_path):
    path, data = write_base(tmp_path)
    magic, ver, hsize, moff, mlen, doff, flen, flags, reserved, crc = struct.unpack("<8sIIQQQQI8sI", data[:64])
    assert (magic, ver, hsize, moff, flags, reserved) == (b"SEEDCORE", 1, 64, 64, 0, b"\0" * 8)
    assert doff == fmt.align64(64 + mlen) and flen == len(data) and flen % 64 == 0
    assert crc == zlib.crc32(data[64 : 64 + mlen], zlib.crc32(data[:60]))
    meta = json.loads(data[64 : 64 + mlen])
    assert meta["format"] == "seedcore" and meta["format_version"] == 1
    assert meta["tool"] == {"name": "seedcore", "version": seedcore.__version__}
    assert meta["graph"] is None and meta["provenance"] is None
    assert not any(data[64 + mlen : doff])
    off = doff
    for t in meta["tensors"]:
        assert t["offset"] == off and t["offset"] % 64 == 0
        payload = data[t["offset"] : t["offset"] + t["length"]]
        assert zlib.crc32(payload) == t["crc32"]
        end = t["offset"] + t["length"]
        assert not any(data[end : fmt.align64(end)])
        off = fmt.align64(end)
    assert off == flen


def test_empty_seed(tmp_path):
    p = str(tmp_path / "e.seed")
    size = seedcore.Seed(model_name="empty").save(p)
    s = seedcore.load(p)
    assert size == os.path.getsize(p) == s._reader.data_offset
    assert s.tensors == [] and s.info().bpw is None
    assert decode_file(p) == {}


def test_atomic_write_leaves_no_temporary(tmp_path):
    path, _ = write_base(tmp_path)
    fmt.write_seed(path, model_name="again", model_source="", tensors=[])
    assert sorted(os.listdir(tmp_path)) == ["base.seed"]
    assert seedcore.load(path).model_name == "again"
    # a failing write leaves the old file and no temporary
    bad = [(TensorEntry("w", (2,), "float32", "raw", {"storage": "float32"}), b"\0" * 3)]
    with pytest.raises(SeedError, match="payload is 3 bytes"):
        fmt.write_seed(path, model_name="x", model_source="", tensors=bad)
    assert sorted(os.listdir(tmp_path)) == ["base.seed"]
    assert seedcore.load(path).model_name == "again"


def test_writer_refuses_what_the_reader_refuses(tmp_path):
    p = str(tmp_path / "w.seed")
    cases = [
        (TensorEntry("", (1,), "float32", "raw", {"storage": "float32"}), b"\0" * 4, "name"),
        (TensorEntry("a", (1,), "int64", "q8", {"block": 32}), b"\0" * 34, "must use codec 'raw'"),
        (TensorEntry("a", (1,) * 9, "float32", "raw", {"storage": "float32"}), b"\0" * 4, "dimensions"),
        (TensorEntry("a", (2**16, 2**16), "float32", "stats", {"k": 0, "seed": 0}), b"\0" * 12, "2\\^32"),
        (TensorEntry("a", (1,), "complex64", "raw", {"storage": "float32"}), b"\0" * 4, "dtype"),
    ]
    for entry, payload, match in cases:
        with pytest.raises(SeedError, match=match):
            fmt.write_seed(p, model_name="m", model_source="", tensors=[(entry, payload)])


def test_unicode_names_and_provenance(tmp_path):
    x = np.arange(4, dtype=np.float32)
    e = TensorEntry("späße.σ.weight", (4,), "float32", "raw", {"storage": "float32"})
    s = seedcore.Seed([(e, x.tobytes())], model_name="ünï", provenance={"note": "ok", "n": 3})
    p = str(tmp_path / "u.seed")
    s.save(p)
    s2 = seedcore.load(p)
    assert s2.names == ["späße.σ.weight"] and s2.model_name == "ünï"
    assert s2.provenance == {"note": "ok", "n": 3}
    assert np.array_equal(s2.decode_reference("späße.σ.weight"), x)


def test_large_metadata_offsets_stable(tmp_path):
    # many tensors: the metadata length depends on the offsets' digit counts
    tensors = [(TensorEntry(f"t{i}", (3,), "float32", "raw", {"storage": "float32"}), b"\1" * 12)
               for i in range(300)]
    p = str(tmp_path / "many.seed")
    fmt.write_seed(p, model_name="m", model_source="", tensors=tensors)
    assert len(seedcore.load(p).tensors) == 300


# ---- bad input: every byte


def test_every_flipped_byte_is_detected(tmp_path):
    """Flip each byte of a small seed, one at a time: both readers refuse every flip."""
    _, good = write_base(tmp_path)
    assert len(good) <= 1024
    p = str(tmp_path / "flip.seed")
    missed_py, missed_native = [], []
    for i in range(len(good)):
        data = bytearray(good)
        data[i] ^= 0xFF if i % 2 else 0x01
        with open(p, "wb") as f:
            f.write(data)
        try:
            seedcore.load(p)
            missed_py.append(i)
        except SeedError as e:
            assert "flip.seed" in str(e)
        try:
            decode_file(p, impl="scalar")
            missed_native.append(i)
        except SeedError as e:
            assert "flip.seed" in str(e)
    assert missed_py == [] and missed_native == []


def test_truncation_at_many_lengths(tmp_path):
    _, good = write_base(tmp_path)
    for n in sorted(set(list(range(0, 80)) + list(range(80, len(good), 37)) + [len(good) - 1])):
        refused_by_both(put(tmp_path, good[:n], "trunc.seed"))
    refused_by_both(put(tmp_path, good + b"\0" * 64, "ext.seed"), "file_length|length|size")


def test_wrong_magic_and_version(tmp_path):
    _, good = write_base(tmp_path)
    b = bytearray(good)
    b[:8] = b"GGUF\0\0\0\0"
    py, _ = refused_by_both(put(tmp_path, bytes(_rewrite_header(b)), "magic.seed"), "magic")
    assert "header" in py
    for v in (0, 2, 0xFFFFFFFF):
        refused_by_both(put(tmp_path, bytes(_rewrite_header(bytearray(good), format_version=v)), "v.seed"),
                        "version")


def test_header_fields(tmp_path):
    _, good = write_base(tmp_path)
    mlen = struct.unpack_from("<Q", good, 24)[0]
    for field, value in (("header_size", 128), ("metadata_offset", 0), ("metadata_length", 1),
                         ("metadata_length", 2**24 + 1), ("metadata_length", mlen + 64),
                         ("data_offset", 0), ("data_offset", 1 << 62), ("file_length", 1 << 40), ("flags", 2)):
        b = bytearray(good)
        if field == "metadata_length":
            struct.pack_into("<Q", b, 24, value)  # CRC cannot be recomputed past the file
        else:
            b = _rewrite_header(b, **{field: value})
        refused_by_both(put(tmp_path, bytes(b), "h.seed"))
    b = bytearray(good)
    b[55] = 1  # reserved
    refused_by_both(put(tmp_path, bytes(_rewrite_header(b)), "r.seed"), "reserved")


def edit_tensor(i, **changes):
    def edit(meta):
        meta["tensors"][i].update(changes)
        return meta
    return edit


def test_offsets_and_shapes_outside_the_file(tmp_path):
    _, good = write_base(tmp_path)
    for edit in (edit_tensor(2, offset=1 << 40), edit_tensor(2, offset=2**64 - 64),
                 edit_tensor(2, shape=[1000], length=8000), edit_tensor(2, length=2**63),
                 edit_tensor(0, offset=0), edit_tensor(2, offset=896), edit_tensor(2, offset=768), edit_tensor(2, offset=833), edit_tensor(1, length=16),
                 edit_tensor(2, shape=[2**32]), edit_tensor(2, shape=[-1]), edit_tensor(2, shape=[10.0]),
                 edit_tensor(2, shape=[True] * 10), edit_tensor(2, crc32=2**32), edit_tensor(2, crc32=-1)):
        refused_by_both(put(tmp_path, with_metadata(good, edit), "o.seed"))


def test_gigantic_stats_shape_refused_before_allocating(tmp_path):
    _, good = write_base(tmp_path)
    data = with_metadata(good, edit_tensor(1, shape=[65535, 65535]))  # 17 GB of float32
    p = put(tmp_path, data, "giant.seed")
    with pytest.raises(SeedError, match="bytes") as e:
        seedcore.load(p, max_bytes=1 << 30)
    assert "giant.seed" in str(e.value)
    with pytest.raises(SeedError, match="giant.seed"):
        decode_file(p, max_bytes=1 << 30)
    # the default limit is the machine's memory: many such tensors exceed any machine
    t = [(TensorEntry(f"s{i}", (65535, 65535), "float32", "stats", {"k": 0, "seed": i}),
          np.array([0, 1, 0], "<f4").tobytes()) for i in range(64)]
    p = str(tmp_path / "giants.seed")
    fmt.write_seed(p, model_name="m", model_source="", tensors=t)
    refused_by_both(p, "bytes")


def test_unknown_codec_dtype_and_params(tmp_path):
    _, good = write_base(tmp_path)
    refused_by_both(put(tmp_path, with_metadata(good, edit_tensor(0, codec="q9")), "c.seed"), "codec")
    refused_by_both(put(tmp_path, with_metadata(good, edit_tensor(0, dtype="float8")), "d.seed"), "dtype")
    refused_by_both(put(tmp_path, with_metadata(good, edit_tensor(0, params={"block": 64})), "p.seed"))
    refused_by_both(put(tmp_path, with_metadata(good, edit_tensor(0, params={"block": 32, "x": 1})), "p.seed"))
    refused_by_both(put(tmp_path, with_metadata(good, edit_tensor(2, codec="q8", params={"block": 32},
                                                                  length=34)), "i.seed"))
    refused_by_both(put(tmp_path, with_metadata(good, edit_tensor(1, params={"k": 1, "seed": 1},
                                                                  length=16)), "k.seed"))


def test_metadata_json_rules(tmp_path):
    _, good = write_base(tmp_path)
    edits = {
        "dup": lambda s: s.replace('"format":"seedcore"', '"format":"seedcore","format":"seedcore"', 1),
        "dup_in_tensor": lambda s: s.replace('"codec":"q8"', '"codec":"q8","codec":"q8"', 1),
        "nan": lambda s: s.replace('"graph":null', '"graph":NaN', 1),
        "trailing_comma": lambda s: s.replace('"graph":null', '"graph":null,', 1),
        "not_object": lambda s: "[" + s + "]",
        "bom": lambda s: "\ufeff" + s,
        "deep": lambda s: s.replace('"graph":null', '"graph":' + "[" * 70 + "]" * 70, 1),
        "bad_format": lambda s: s.replace('"format":"seedcore"', '"format":"seedcorf"', 1),
        "version_float": lambda s: s.replace('"format_version":1', '"format_version":1.0', 1),
        "no_tensors": lambda s: s.replace('"tensors":', '"tensorz":', 1),
        "model_not_obj": lambda s: s.replace('"model":{"name":"m","source":"s"}', '"model":"m"', 1),
        "provenance_list": lambda s: s.replace('"provenance":null', '"provenance":[]', 1),
        "dup_name": lambda s: s.replace('"name":"s"', '"name":"w"', 1),
        "lone_surrogate": lambda s: s.replace('"name":"w"', '"name":"\\ud800"', 1),
        "invalid_utf8": lambda s: s.replace('"name":"w"', '"name":"\udcff"', 1),
    }
    for name, edit in edits.items():
        try:
            data = with_metadata(good, edit)
        except UnicodeEncodeError:
            data = with_metadata_bytes(good, b'"name":"w"', b'"name":"\xff"')
        refused_by_both(put(tmp_path, data, name + ".seed"))
    # unknown top-level keys are ignored (room to grow)
    ok = with_metadata(good, lambda s: s.replace('"graph":null', '"graph":null,"future":{"x":[1,2]}', 1))
    assert len(seedcore.load(put(tmp_path, ok, "future.seed")).tensors) == 3
    assert len(decode_file(str(tmp_path / "future.seed"))) == 3


def with_metadata_bytes(good: bytes, old: bytes, new: bytes) -> bytes:
    mlen = struct.unpack_from("<Q", good, 24)[0]
    meta = good[64 : 64 + mlen].replace(old, new, 1)
    meta += b" " * (mlen - len(meta))
    out = bytearray(good[:64] + meta + good[64 + mlen :])
    return bytes(_rewrite_header(out, metadata_length=len(meta)))


def test_payload_content_rules(tmp_path):
    """Payloads whose checksum is right but whose content the spec forbids."""
    cases = [
        (TensorEntry("b", (3,), "bool", "raw", {"storage": "bool"}), bytes([0, 1, 2])),
        (TensorEntry("s", (4, 4), "float32", "stats", {"k": 0, "seed": 0}),
         np.array([0, -1, 0], "<f4").tobytes()),
        (TensorEntry("s", (4, 4), "float32", "stats", {"k": 0, "seed": 0}),
         np.array([np.inf, 1, 0], "<f4").tobytes()),
        (TensorEntry("s", (4, 4), "float32", "stats", {"k": 0, "seed": 0}),
         np.array([0, 1, 1.5], "<f4").tobytes()),
        (TensorEntry("s", (4, 4), "float32", "stats", {"k": 2, "seed": 0}),
         np.array([0, 1, 0, 1, 2], "<f4").tobytes()),
        (TensorEntry("p", (8,), "float32", "prng", {"C": 8, "P": 4, "K": 16, "exp_bias": 0}),
         b"\0\0" + b"\0" + b"\0\0"),  # seed 0
    ]
    for i, (entry, payload) in enumerate(cases):
        p = str(tmp_path / f"content{i}.seed")
        fmt.write_seed(p, model_name="m", model_source="", tensors=[(entry, payload)])
        s = seedcore.load(p)  # structurally valid; decoding refuses
        with pytest.raises(SeedError, match=f"content{i}.seed"):
            s.decode_reference(entry.name)
        with pytest.raises(SeedError, match=f"content{i}.seed"):
            decode_file(p, impl="scalar")


def test_committed_bad_vectors_are_refused():
    from conftest import VECTORS

    bad = os.path.join(VECTORS, "bad")
    names = sorted(f for f in os.listdir(bad) if f.endswith(".seed"))
    assert len(names) >= 15
    for f in names:
        p = os.path.join(bad, f)
        if f == "base_valid.seed":
            seedcore.load(p)
            decode_file(p)
        else:
            refused_by_both(p)


def test_not_a_file(tmp_path):
    with pytest.raises(SeedError, match="nope.seed"):
        seedcore.load(str(tmp_path / "nope.seed"))
    with pytest.raises(SeedError, match="nope.seed"):
        decode_file(str(tmp_path / "nope.seed"))


def test_zero_element_tensor_with_large_dimensions(tmp_path):
    """The 2^32 limit is on n, the whole product: [2^20, 2^20, 0] has n = 0."""
    p = str(tmp_path / "empty.seed")
    fmt.write_seed(p, model_name="m", model_source="", tensors=[
        (TensorEntry("z", (2**20, 2**20, 0), "float32", "raw", {"storage": "float32"}), b"")])
    assert seedcore.load(p).decode_reference("z").shape == (2**20, 2**20, 0)
    assert decode_file(p)["z"].shape == (2**20, 2**20, 0)


def test_lone_surrogates_are_refused(tmp_path):
    with pytest.raises(SeedError, match="surrogate"):
        fmt.write_seed(str(tmp_path / "w.seed"), model_name="bad\ud800", model_source="", tensors=[])
    with pytest.raises(ValueError, match="surrogate"):          # the escape parses as JSON, but is no text
        fmt.parse_metadata(b'{"model": {"name": "x\\ud800"}}')
    assert fmt.parse_metadata(b'{"name": "\\ud83d\\ude00"}') == {"name": "\U0001F600"}   # a valid pair
