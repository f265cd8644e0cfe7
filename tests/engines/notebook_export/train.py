#!/usr/bin/env python
# coding: utf-8

# # Backprop from scratch
# 
# A tiny `Value` class, following along with micrograd. Each `Value` keeps its
# `data`, its `grad`, the values it was made from (`_prev`) and a `_backward`
# closure that pushes `out.grad` into them.

# In[1]:


import math


# In[2]:


class Value:
    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = list(_children)
        self._op = _op

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, other):
        assert isinstance(other, (int, float))
        out = Value(self.data**other, (self,), f'**{other}')

        def _backward():
            self.grad += other * self.data**(other - 1) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        x = self.data
        t = (math.exp(2*x) - 1) / (math.exp(2*x) + 1)
        out = Value(t, (self,), 'tanh')

        def _backward():
            self.grad += (1 - t**2) * out.grad
        out._backward = _backward
        return out

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def backward(self):
        topo = []
        visited = set()
        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)

        self.grad = 1.0
        for node in reversed(topo):
            node._backward()


# In[3]:


a = Value(2.0)
b = a * a + a
b.backward()
a.grad   # should be 2*2 + 1 = 5


# ## Training a tiny model
# 
# `h = tanh(w1*x + b)`, `y = w2*h + h*h`, squared error summed over two points.

# In[4]:


w1, w2, b = Value(0.5), Value(-0.3), Value(0.1)
params = [w1, w2, b]
data = [(0.5, 0.8), (-1.2, -0.4)]
lr = 0.1


# In[5]:


for step in range(3):
    loss = 0
    for x, target in data:
        h = (w1*x + b).tanh()
        y = w2*h + h*h
        loss = loss + (y - target)**2

    for p in params:
        p.grad = 0.0
    loss.backward()

    for p in params:
        p.data += -lr * p.grad
    print(step, loss.data)


# In[6]:


print("grads", [round(p.grad, 6) for p in params])
