# Core Structure
class Node:
    def __init__(self, value, parents=(), backward_fn=None):
        self.value = value
        self.grad = 0
        self.parents = parents
        self.backward_fn = backward_fn

# Function for addition
def add(a, b):
    out = Node(
        value = a.value + b.value,
        parents = (a,b)
    )
    # Gradient Accumulation
    def backward():
        a.grad += out.grad * 1
        b.grad += out.grad * 1
    out.backward_fn = backward
    return out


# Function for multiplication
def mul(a, b):
    out = Node(
        value = a.value * b.value,
        parents = (a,b)
    )
    # Gradient Accumulation
    def backward():
        a.grad += out.grad * b.value
        b.grad += out.grad * a.value
    out.backward_fn = backward
    return out

visited = set()
order = []
def post_dfs(node):
    if node in visited:
        return
    visited.add(node)
    for parent in node.parents:
        post_dfs(parent)
    order.append(node)

#Backward Pass
def backward(out_node):
    post_dfs(out_node)
    out_node.grad = 1
    for node in reversed(order):
        if node.backward_fn:
            node.backward_fn()


x = Node(5)
y = Node(4)
z = add(x,x)
backward(z)
print(z.grad, x.grad, y.grad) # Outputs are (1 2 0) because x is being used twice so it takes the blame twice.
z = mul(add(x,y),add(x,y))
backward(z)
print(z.grad, x.grad, y.grad) # Outputs are (1 22 18) the answer should be (1 20 18) but due to the gradient not being reset before calling the x node again it added the previous gradient to the new one.
