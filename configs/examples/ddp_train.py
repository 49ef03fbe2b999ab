"""A PyTorch DDP training script as lmsweep's command trials run it (configs/command_trial.ini).

Nothing in it is lmsweep's own except reading the point from its arguments and printing one
JSON line per epoch: torch.distributed's env:// rendezvous (MASTER_ADDR, MASTER_PORT,
WORLD_SIZE, RANK, LOCAL_RANK) is what the sweep sets for each rank of a trial's group, and
LMSWEEP_RESUME_DIR is where it keeps its state so that a requeued trial resumes.
  python3 ddp_train.py --lr 0.01 --wd 0.001 --epochs 6
A small regression on synthetic data; the objective, val_r2, is maximised.
"""
import argparse
import json
import os

import torch
import torch.distributed as dist


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--wd", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=6)
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")  # env:// from the sweep
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)

    g = torch.Generator().manual_seed(int(os.environ.get("LMSWEEP_SEED", "0")) % (2**31))
    w_true = torch.randn(16, 1, generator=g)
    x = torch.randn(4096, 16, generator=g)
    y = x @ w_true + 0.1 * torch.randn(4096, 1, generator=g)
    x_val, y_val = x[:512].to(device), y[:512].to(device)
    shard = slice(512 + rank, None, world)  # each rank its share of the training rows
    x_train, y_train = x[shard].to(device), y[shard].to(device)

    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(16, 1).to(device))
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, weight_decay=a.wd)
    state = os.path.join(os.environ.get("LMSWEEP_RESUME_DIR", "."), "state.pt")
    start = 0
    if os.path.exists(state):
        saved = torch.load(state, map_location=device)
        model.module.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        start = saved["epoch"]

    for epoch in range(start + 1, a.epochs + 1):
        for i in range(0, x_train.shape[0], 64):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x_train[i:i + 64]), y_train[i:i + 64])
            loss.backward()  # DDP averages the gradients over the ranks
            opt.step()
        with torch.no_grad():
            err = torch.nn.functional.mse_loss(model(x_val), y_val)
            r2 = 1 - err / y_val.var()
        if rank == 0:
            torch.save({"model": model.module.state_dict(), "opt": opt.state_dict(), "epoch": epoch}, state)
            print(json.dumps({"epoch": epoch, "val_r2": r2.item(), "loss": loss.item(), "world": world}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
