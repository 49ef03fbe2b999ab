#!/usr/bin/python3
"""Same-machine reference for bench_train: the published Python training step, timed.

The LM-CLIP step as damilab/lm-clip runs it, in PyTorch eager mode: per step, the image batch,
its captions and the C class prompts are encoded (prompts with gradient), all L2-normalised,
L = L_CLIP + lambda * BAL, optimizer.zero_grad(set_to_none=True), backward, AdamW (0.9, 0.98,
eps 1e-9, weight decay 0.01), loss.item().

The model is the checkpoint itself: OpenAI's released archives carry their TorchScript model
code, which we train here (weights converted to fp32 as OpenAI's loader does on CPU). The
losses follow DESIGN.md section 1 (the formulas, written here). Token ids come from bench_train
(--tokens: lmsweep's tokenizer, equal to OpenAI's on the tested cases), so no tokenizer code is
needed; the reference tokenizes in its DataLoader, which is not timed here either.

Run with Debian's /usr/bin/python3 (python3-torch 1.13), or any python with torch; bench_train
writes the tokens file and calls this script itself, passing its --device. On a GPU (--device
cuda) the archive's TorchScript, traced on the CPU, has its device constants moved to the GPU (as
OpenAI's clip.load does), the timed loop is bracketed by torch.cuda.synchronize(), and the
breakdown is taken with CUDA events (no extra synchronisation inside the step).
Prints one JSON line ({"bench": "reference_train_step", ...}) and a human-readable line.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def bal_loss(x, y, class_weights, gamma_neg, gamma_pos=0.0, clip=0.05, eps=1e-8, label_smoothing=0.0):
    """BAL as DESIGN.md states it: x [B, C] logits, y [B, C] 0/1, class_weights [C]."""
    t = (1 - label_smoothing) * y + label_smoothing / y.shape[1]
    p = torch.sigmoid(x / x.max())
    xn = (1 - p + clip).clamp(max=1) if clip > 0 else 1 - p
    loss = t * torch.log(p.clamp(min=eps)) * (1 + class_weights) + (1 - y) * torch.log(xn.clamp(min=eps))
    weight = torch.pow(1 - p * t - xn * (1 - y), gamma_pos * t + gamma_neg * (1 - y))
    return -(loss * weight).mean()


def clip_loss(image_features, text_features, logit_scale):
    """Symmetric cross-entropy over the batch (labels = arange(B))."""
    logits = logit_scale * image_features @ text_features.T
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def move_torchscript(model, device):
    """The archive's traced code holds device constants ("cpu", or "cuda" for OpenAI's releases):
    point them at `device`, as OpenAI's clip.load(jit=True) does."""
    holder = torch.jit.trace(lambda: torch.ones([]).to(torch.device(device)), example_inputs=[])
    device_node = [n for n in holder.graph.findAllNodes("prim::Constant") if "Device" in repr(n)][-1]

    def patch(module):
        try:
            graphs = [module.graph] if hasattr(module, "graph") else []
        except RuntimeError:
            graphs = []
        if hasattr(module, "forward1"):
            graphs.append(module.forward1.graph)
        for graph in graphs:
            for node in graph.findAllNodes("prim::Constant"):
                if "value" in node.attributeNames():
                    value = str(getattr(node, node.kindOf("value"))("value"))
                    if value.startswith("cuda") or value == "cpu":
                        node.copyAttributes(device_node)

    model.apply(patch)
    patch(model.encode_image)
    patch(model.encode_text)
    return model


def read_labels(path):
    names = {}
    for line in open(path):
        line = line.strip()
        if line:
            name, index = line.rsplit(" ", 1)
            names[int(index)] = name
    return [names[i] for i in range(len(names))]


def read_split(path):
    entries = []
    for line in open(path):
        parts = line.split()
        if parts:
            entries.append((parts[0], [int(v) for v in parts[1:]]))
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--tokens", required=True, help="JSON {captions: [[id...]...], prompts: [[id...]...]}")
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=50, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-6)
    ap.add_argument("--lam", type=float, default=0.4)
    ap.add_argument("--gamma-neg", type=float, default=9.8)
    ap.add_argument("--s", type=float, default=1.35)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--breakdown", action="store_true", help="also time the parts of the step")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    a = ap.parse_args()
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    if cuda and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if cuda and not torch.cuda.is_available():
        sys.exit("reference_train_step.py: --device %s but torch %s sees no GPU" % (a.device, torch.__version__))

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    from PIL import Image

    names = read_labels(a.labels)
    C = len(names)
    entries = read_split(a.train)
    N = len(entries)
    model = torch.jit.load(a.weights, map_location=device).float()
    if cuda:
        move_torchscript(model, device)
    tokens = json.load(open(a.tokens))
    prompts = torch.tensor(tokens["prompts"], dtype=torch.long, device=device)
    captions = torch.tensor(tokens["captions"], dtype=torch.long, device=device)
    ctx = prompts.shape[1]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    res = model.visual.conv1.weight.shape[-1] * round((model.visual.positional_embedding.shape[0] - 1) ** 0.5)
    images = []
    for path, _ in entries:
        im = Image.open(os.path.join(a.data_root, path)).convert("RGB").resize((res, res), Image.BILINEAR)
        images.append((torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255 - mean) / std)
    images = torch.stack(images).to(device)
    onehot = torch.zeros(N, C)
    for i, (_, labels) in enumerate(entries):
        onehot[i, labels] = 1
    counts = onehot.sum(0).double()
    cw = (N / counts) ** a.s
    cw = (cw / cw.max()).to(device)
    onehot = onehot.to(device)
    for p in model.parameters():
        p.requires_grad = True
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=0.01)
    model.train()

    names_of_parts = ["image_fwd", "text_fwd", "loss_fwd", "backward", "optimizer"]
    parts = dict.fromkeys(names_of_parts, 0.0)
    events = []  # on a GPU: per timed step, the CUDA events at the part boundaries

    def now(timed_parts, stamps):
        if cuda and timed_parts:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            stamps.append(e)
        return time.perf_counter()

    def step(i, timed_parts):
        lo = (i * a.batch) % N
        idx = torch.arange(lo, min(lo + a.batch, N), device=device)
        stamps = []
        t0 = now(timed_parts, stamps)
        img = model.encode_image(images[idx])
        t1 = now(timed_parts, stamps)
        txt = model.encode_text(captions[idx])
        lab = model.encode_text(prompts)  # re-encoded with gradient every step
        t2 = now(timed_parts, stamps)
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        lab = lab / lab.norm(dim=-1, keepdim=True)
        scale = model.logit_scale.exp()
        dot = scale * img @ lab.T
        loss = clip_loss(img, txt, scale) + bal_loss(dot, onehot[idx], cw, a.gamma_neg,
                                                     label_smoothing=a.label_smoothing) * a.lam
        t3 = now(timed_parts, stamps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t4 = now(timed_parts, stamps)
        optimizer.step()
        t5 = now(timed_parts, stamps)  # on a GPU: where the optimizer's kernels end
        value = loss.item()
        if not cuda:
            t5 = time.perf_counter()  # on the CPU, loss.item() counts with the optimizer, as before
        if stamps:
            events.append(stamps)
        elif timed_parts:
            parts["image_fwd"] += t1 - t0
            parts["text_fwd"] += t2 - t1
            parts["loss_fwd"] += t3 - t2
            parts["backward"] += t4 - t3
            parts["optimizer"] += t5 - t4
        return value, len(idx)

    for i in range(a.warmup):
        step(i, False)
    seen = 0
    if cuda:
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for i in range(a.warmup, a.warmup + a.steps):
        _, n = step(i, a.breakdown)
        seen += n
    if cuda:
        torch.cuda.synchronize(device)
    sec = time.perf_counter() - t
    for stamps in events:  # milliseconds between consecutive events
        for k, name in enumerate(names_of_parts):
            parts[name] += stamps[k].elapsed_time(stamps[k + 1]) / 1000
    fig = {"bench": "reference_train_step", "impl": "python-openai-clip-torchscript", "torch": torch.__version__,
           "device": str(device), "batch": a.batch, "threads": torch.get_num_threads(), "steps": a.steps, "images": seen,
           "seconds": sec, "images_per_s": seen / sec, "text_tokens": ctx, "prompts": C,
           "params": sum(p.numel() for p in model.parameters())}
    if a.breakdown:
        fig["ms_per_step"] = {k: 1000 * v / a.steps for k, v in parts.items()}
    print(json.dumps(fig))
    print("python reference step (OpenAI CLIP, torch %s, %s, %d threads): %.1f images/s (batch %d, %d steps)"
          % (torch.__version__, device, torch.get_num_threads(), seen / sec, a.batch, a.steps))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
