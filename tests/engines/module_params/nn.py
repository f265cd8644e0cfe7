from autograd import Parameter


class Module:
    def parameters(self):
        """Every Parameter held by this module or its submodules, in attribute order."""
        found = []
        for value in vars(self).values():
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, Parameter):
                    found.append(item)
                elif isinstance(item, Module):
                    found.extend(item.parameters())
        return found


class Neuron(Module):
    def __init__(self, weights, bias, name, act=True):
        self.w = [Parameter(w, f"{name}.w{i}") for i, w in enumerate(weights)]
        self.b = Parameter(bias, f"{name}.b")
        self.act = act

    def __call__(self, x):
        z = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return z.tanh() if self.act else z


class Net(Module):
    def __init__(self):
        self.hidden = [Neuron([0.3, -0.6], 0.1, "h0"), Neuron([0.5, 0.2], -0.2, "h1")]
        self.out = Neuron([0.7, -0.4], 0.0, "o", act=False)

    def parameters(self):
        return [p for n in self.hidden for p in n.parameters()] + self.out.parameters()

    def __call__(self, x):
        return self.out([n(x) for n in self.hidden])


class SGD:
    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def zero_grad(self):
        for p in self.params:
            p.grad = 0

    def step(self):
        for p in self.params:
            p.data -= self.lr * p.grad
