"""A distance through sqrt that reaches 0: the forward is fine, the gradient is NaN.

The derivative of sqrt at 0 is infinite; the two points start equal, so the
distance is exactly 0 and every gradient below it becomes NaN.

    trace-backward examples/torch_sqrt_zero.py
"""

import torch

a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([1.0, 2.0], requires_grad=True)
diff = a - b
squared = (diff * diff).sum()
distance = torch.sqrt(squared)  # sqrt(0): its derivative is infinite
loss = distance + (a * b).sum()
loss.backward()
print("loss", loss.item(), "a.grad", a.grad.tolist(), "b.grad", b.grad.tolist())
