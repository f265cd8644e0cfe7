"""A PyTorch loop that never calls optimizer.zero_grad(): each step adds to the last one's gradients.

    trace-backward examples/torch_forgot_zero_grad.py
"""

import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(32, 4)
y = x.sum(dim=1, keepdim=True)

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
loss_fn = nn.MSELoss()

for step in range(5):
    out = model(x)
    loss = loss_fn(out, y)
    # no optimizer.zero_grad(): the gradients of every earlier step are still there
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
