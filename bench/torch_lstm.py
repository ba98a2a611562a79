"""The PyTorch reference's LSTM variant, for bench/peer.py --arch lstm: kerasaudio's `lstm`
(stacked LSTM, classified from the output at each sequence's last real frame) in PyTorch,
trained as ../shared/peers/torch_gru_attention.py trains its GRU: Adam, cross-entropy,
fixed epochs, per-feature z-normalisation with training statistics, batches padded to their
longest sequence or, with --bucket, of similar length.

Same input (.npz) and output (one JSON line) as the reference. It runs in the benchmark's own
virtual environment; the project never depends on torch:

    /tmp/torch-peer/bin/python bench/torch_lstm.py --npz data.npz --seed 0 [--bucket]
"""

import argparse
import json
import os
import time

import numpy as np


def split(npz, name):
    x, lens, y = npz[f"x_{name}"], npz[f"len_{name}"], npz[f"y_{name}"]
    ends = lens.cumsum()
    return [x[e - n:e] for n, e in zip(lens, ends)], y.astype("int64")


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npz", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bucket", action="store_true",
                        help="batches of similar length (sorted, chunked, batch order shuffled)")
    return parser.parse_args()


def epoch_batches(lengths, batch, bucket: bool, rng):
    """The reference's batches: shuffled, or (bucket) sorted by length with random ties,
    chunked, and the chunks shuffled."""
    if bucket:
        order = np.lexsort((rng.random(len(lengths)), lengths))
        chunks = [order[s:s + batch] for s in range(0, len(order), batch)]
        return [chunks[i] for i in rng.permutation(len(chunks))]
    perm = rng.permutation(len(lengths))
    return [perm[s:s + batch] for s in range(0, len(perm), batch)]


def main():
    args = arguments()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))  # before torch starts
    import torch
    import torch.nn as nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = np.load(args.npz, allow_pickle=False)
    xtr, ytr = split(data, "train")
    xte, yte = split(data, "test")
    frames = np.concatenate(xtr)
    mu, sd = frames.mean(0), frames.std(0) + 1e-8
    xtr = [((x - mu) / sd).astype("float32") for x in xtr]
    xte = [((x - mu) / sd).astype("float32") for x in xte]
    n_feat, n_classes = xtr[0].shape[1], int(max(ytr.max(), yte.max())) + 1

    class LastFrameLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(n_feat, args.hidden, num_layers=args.layers, batch_first=True)
            self.head = nn.Linear(args.hidden, n_classes)

        def forward(self, x, lengths):
            h, _ = self.lstm(x)  # padding follows the real frames, so it never reaches them
            return self.head(h[torch.arange(len(lengths)), lengths - 1])

    def batch(xs, idx):
        lens = np.array([len(xs[i]) for i in idx])
        xb = np.zeros((len(idx), lens.max(), n_feat), "float32")
        for j, i in enumerate(idx):
            xb[j, :lens[j]] = xs[i]
        return torch.from_numpy(xb), torch.from_numpy(lens)

    model = LastFrameLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    lossf = nn.CrossEntropyLoss()
    ytr_t = torch.from_numpy(ytr)
    lengths = np.array([len(x) for x in xtr])
    start = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for idx in epoch_batches(lengths, args.batch, args.bucket, rng):
            xb, lb = batch(xtr, idx)
            opt.zero_grad()
            lossf(model(xb, lb), ytr_t[idx]).backward()
            opt.step()
    train_s = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        pred = np.concatenate([
            model(*batch(xte, np.arange(s, min(s + 256, len(xte))))).argmax(1).numpy()
            for s in range(0, len(xte), 256)])
    print(json.dumps({
        "peer": "torch_lstm", "seed": args.seed,
        "test_accuracy": round(float((pred == yte).mean()), 6),
        "train_seconds": round(train_s, 3), "seconds_per_epoch": round(train_s / args.epochs, 3),
        "epochs": args.epochs, "train_sequences": len(xtr), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "bucket": args.bucket,
    }))


if __name__ == "__main__":
    main()
