"""backward(retain_graph=True), then backward() again: every gradient is added twice.

    trace-backward examples/torch_retain_twice.py
"""

import torch
from torch import nn

torch.manual_seed(0)
x = torch.randn(8, 3)
y = torch.randn(8, 1)
model = nn.Linear(3, 1)

loss = nn.functional.mse_loss(model(x), y)
loss.backward(retain_graph=True)
print("after one backward:", model.bias.grad.item())
loss.backward()  # the same graph again: the gradient doubles
print("after two:", model.bias.grad.item())
