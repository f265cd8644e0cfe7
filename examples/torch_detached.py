"""A stray .detach() cuts the encoder off: its weights never get a gradient, never learn.

    trace-backward examples/torch_detached.py
"""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 8)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        features = torch.relu(self.encoder(x)).detach()  # meant for logging, cuts the graph
        return self.head(features)


torch.manual_seed(0)
x = torch.randn(16, 4)
y = x.sum(dim=1, keepdim=True)
net = Net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.05)

for step in range(3):
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(net(x), y)
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}, encoder grad {net.encoder.weight.grad}")
