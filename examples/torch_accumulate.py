"""Gradient accumulation done right: Adam steps once every 4 micro-batches, then zeroes.

    trace-backward examples/torch_accumulate.py

The gradients of four backward() calls are added up on purpose before each step, so
trace-backward reports the passes and no finding.
"""

import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.MSELoss()
accumulate = 4

for i in range(12):
    x = torch.randn(8, 4)
    y = x.sum(dim=1, keepdim=True)
    loss = loss_fn(model(x), y) / accumulate
    loss.backward()  # adds to the gradients of the micro-batches before it
    if (i + 1) % accumulate == 0:
        optimizer.step()
        optimizer.zero_grad()
        print(f"step {(i + 1) // accumulate}: loss {loss.item() * accumulate:.4f}")
