"""The site's architecture diagrams as data: nodes placed in inches, arrows, groups.

Drawn in both languages by ``snippets/diagram.py`` when the site is built
(``hooks/diagrams.py``) and served as ``figures/diagrams/<name>.svg``. Where they go:
``backprop-graph`` foundations/backprop.md, ``rnn-unrolled`` rnn/rnn.md, ``lstm-cell``
rnn/lstm.md, ``gru-cell`` rnn/gru.md, ``attention-seq2seq`` attention/attention.md,
``gan-loop`` gan/game.md, ``inception`` cnn/building-blocks.md, ``residual-block``
cnn/resnet.md, ``dqn-loop`` rl/dqn.md.
"""

from __future__ import annotations

from itertools import pairwise

from snippets.diagram import Diagram, Edge, Group, Node, T

SIGMA = "$\\sigma$"
LINE = {"head": False}  # a line without an arrowhead (a bus, a junction)
GRAD = {"style": "--", "tone": "grad"}  # a gradient or an update, backwards


def text(id, xy, *lines, size=None) -> Node:
    return Node(id, xy, lines, "text", size=size)


def op(id, xy, symbol, size=None) -> Node:
    return Node(id, xy, (symbol,), "op", "op", size)


def dot(id, xy) -> Node:
    return Node(id, xy, (), "dot")


def point(id, xy) -> Node:
    """An invisible end for an arrow that joins no node."""
    return Node(id, xy, (), "text", size=(0.02, 0.02))


def backprop() -> Diagram:
    fwd, bwd, low, top = 3.0, 1.55, 0.4, 4.2
    x = {"X": 0.45, "Z": 2.2, "H": 4.3, "O": 6.4, "L": 8.4}
    leaf, grad = (0.5, 0.38), "loss"
    nodes = (
        Node("X", (x["X"], fwd), ("$X$",), role="data", size=leaf),
        Node("Z", (x["Z"], fwd), ("$Z_1=XW_1+b_1$",), size=(1.6, 0.45)),
        Node("H", (x["H"], fwd), ("$H=\\mathrm{ReLU}(Z_1)$",), size=(1.75, 0.45)),
        Node("O", (x["O"], fwd), ("$O=HW_2+b_2$",), size=(1.6, 0.45)),
        Node("L", (x["L"], fwd), (T("cross-entropy", "交叉熵"), "$L$"), role="loss",
             size=(1.25, 0.62)),
        *(Node(name, (at, top), (f"${name[0]}_{name[1]}$",), role="param", size=leaf)
          for name, at in (("W1", 1.85), ("b1", 2.55), ("W2", 6.05), ("b2", 6.75))),
        Node("Y", (x["L"], top), ("$Y$",), role="data", size=leaf),
        Node("gO", (x["O"], bwd), ("$\\bar O=$", "$(\\mathrm{softmax}(O)-Y)/n$"),
             role=grad, size=(1.95, 0.62)),
        Node("gH", (x["H"], bwd), ("$\\bar H=\\bar O\\,W_2^\\top$",), role=grad,
             size=(1.4, 0.45)),
        Node("gZ", (x["Z"], bwd), ("$\\bar Z_1=\\bar H\\odot\\mathbb{1}[Z_1>0]$",),
             role=grad, size=(2.05, 0.45)),
        Node("gW2", (x["O"], low), ("$\\bar W_2=H^\\top\\bar O$",), role=grad,
             size=(1.5, 0.45)),
        Node("gW1", (x["Z"], low), ("$\\bar W_1=X^\\top\\bar Z_1$",), role=grad,
             size=(1.5, 0.45)),
        text("key", (x["L"], low), "$\\bar A=\\partial L/\\partial A$",
             size=(1.4, 0.3)),
    )
    forward = (("X", "Z"), ("W1", "Z"), ("b1", "Z"), ("Z", "H"), ("H", "O"),
               ("W2", "O"), ("b2", "O"), ("O", "L"), ("Y", "L"))
    stored = (T("stored", "保存的值"),)
    edges = (
        *(Edge(a, b) for a, b in forward),
        Edge("L", "gO", ("$\\partial L/\\partial L=1$",), via=((x["L"], bwd),), at=0.3,
             **GRAD),
        *(Edge(a, b, **GRAD) for a, b in (("gO", "gH"), ("gH", "gZ"), ("gO", "gW2"),
                                          ("gZ", "gW1"))),
        Edge("O", "gO", stored, style=":"), Edge("Z", "gZ", stored, style=":"),
    )
    return Diagram("backprop-graph", (9.2, 4.5), nodes, edges)


def rnn() -> Diagram:
    row, low, high = 1.9, 0.8, 3.15
    steps = (("1", 4.1), ("2", 5.3), ("3", 6.5), ("T", 8.35))
    nodes = (
        text("x", (0.9, low), "$x_t$"), text("y", (0.9, high), "$\\hat y_t$"),
        Node("rnn", (0.9, row), ("RNN",), size=(1.0, 0.5)),
        point("u0", (2.15, row)), point("u1", (2.95, row)),
        text("h0", (3.25, row), "$h_0$", size=(0.3, 0.3)),
        text("more", (7.42, row), "$\\cdots$", size=(0.3, 0.3)),
        *(Node(f"c{t}", (at, row), ("RNN",), size=(0.8, 0.5)) for t, at in steps),
        *(text(f"x{t}", (at, low), f"$x_{t}$") for t, at in steps),
        *(text(f"y{t}", (at, high), f"$\\hat y_{t}$") for t, at in steps),
        text("loop", (0.9, 0.25), T("with its loop", "带环的写法"), size=(1.6, 0.3)),
        text("same", (6.2, 0.25), T(
            "unrolled in time: one copy per step, all with the same weights",
            "按时间展开：每一步一份，全都共用同一组权重"), size=(5.2, 0.3)),
    )
    chain = ("h0", "c1", "c2", "c3", "more", "cT")
    states = ((), ("$h_1$",), ("$h_2$",), ("$h_3$",), ("$h_{T-1}$",))
    edges = (
        Edge("x", "rnn", ("$W_{xh}$",), side="left"),
        Edge("rnn", "y", ("$W_{hq}$",), side="left"),
        Edge("rnn.e", "rnn.n+0.3", ("$W_{hh}$",), at=0.3,
             via=((1.8, row), (1.8, 2.55), (1.2, 2.55))),
        Edge("u0", "u1", (T("unroll", "展开"),)),
        *(Edge(a, b, h) for (a, b), h in zip(pairwise(chain), states)),
        *(Edge(f"x{t}", f"c{t}") for t, _ in steps),
        *(Edge(f"c{t}", f"y{t}") for t, _ in steps),
    )
    cells = tuple(f"c{t}" for t, _ in steps) + ("more",)
    return Diagram("rnn-unrolled", (9.0, 3.4), nodes, edges,
                   (Group(("rnn",), pad=0.25), Group(cells, pad=0.25)))


def lstm() -> Diagram:
    top, mid, gates, bus = 3.7, 2.7, 1.7, 0.7
    x = {"f": 2.4, "i": 3.6, "g": 4.8, "o": 6.2}
    nodes = (
        text("c_prev", (0.35, top), "$c_{t-1}$"), text("c_next", (8.75, top), "$c_t$"),
        text("h_prev", (0.35, bus), "$h_{t-1}$"), text("h_next", (8.75, bus), "$h_t$"),
        text("x", (1.3, 0.0), "$x_t$"),
        op("forget", (x["f"], top), "×"), op("add", (x["g"], top), "+"),
        op("write", (x["g"], mid), "×"), op("squash", (7.4, mid), "tanh", (0.5, 0.5)),
        op("read", (7.4, gates), "×"),
        *(Node(k, (x[k], gates), (T(en, zh), f), role=role, size=(0.95, 0.62))
          for k, en, zh, f, role in (
              ("f", "forget gate", "遗忘门", SIGMA, "gate"),
              ("i", "input gate", "输入门", SIGMA, "gate"),
              ("g", "candidate", "候选内容", "tanh", "net"),
              ("o", "output gate", "输出门", SIGMA, "gate"))),
        dot("j_c", (7.4, top)), dot("j_x", (1.3, bus)),
        *(dot(f"j_{k}", (at, bus)) for k, at in x.items()),
    )
    edges = (
        Edge("c_prev", "forget"),
        Edge("forget", "add", (T("cell state", "单元状态"),)),
        Edge("add", "j_c", **LINE), Edge("j_c", "c_next"),
        Edge("j_c", "squash"), Edge("squash", "read"),
        Edge("read", "h_next", via=((7.4, bus),)),
        Edge("h_prev", "j_x", **LINE), Edge("x", "j_x", **LINE),
        Edge("j_x", "j_f", ("$[h_{t-1}, x_t]$",), side="above", **LINE),
        *(Edge(f"j_{a}", f"j_{b}", **LINE) for a, b in pairwise("figo")),
        *(Edge(f"j_{k}", k) for k in "figo"),
        Edge("f", "forget", ("$f_t$",)),
        Edge("i", "write", ("$i_t$",), via=((x["i"], mid),), at=0.75),
        Edge("g", "write", ("$g_t$",)),
        Edge("write", "add", ("$i_t \\odot g_t$",)),
        Edge("o", "read", ("$o_t$",)),
    )
    inside = tuple(n.id for n in nodes if n.kind != "text")
    return Diagram("lstm-cell", (9.0, 4.3), nodes, edges,
                   (Group(inside, T("LSTM cell", "LSTM 单元")),))


def gru() -> Diagram:
    top, mid, gates, bus = 3.9, 2.8, 1.75, 0.7
    size = (0.95, 0.62)
    nodes = (
        text("h_prev", (0.35, top), "$h_{t-1}$"), text("h_next", (8.75, top), "$h_t$"),
        text("x", (1.7, 0.0), "$x_t$"),
        op("keep", (2.3, top), "×"), op("add", (7.0, top), "+"),
        op("new", (7.0, mid), "×"), op("flip", (5.6, mid), "1−", (0.42, 0.42)),
        op("reset", (5.2, gates), "×"),
        Node("z", (2.3, gates), (T("update gate", "更新门"), SIGMA), role="gate",
             size=size),
        Node("r", (3.7, gates), (T("reset gate", "重置门"), SIGMA), role="gate",
             size=size),
        Node("n", (7.0, gates), (T("candidate", "候选状态"), "tanh"), size=size),
        dot("j_h", (1.1, top)), dot("j_z", (2.3, mid)),
        *(dot(f"b_{k}", (at, bus)) for k, at in (
            ("h", 1.1), ("x", 1.7), ("z", 2.3), ("r", 3.7), ("hn", 5.2), ("n", 7.0))),
    )
    edges = (
        Edge("h_prev", "j_h", **LINE), Edge("j_h", "keep"),
        Edge("keep", "add", ("$z_t \\odot h_{t-1}$",)), Edge("add", "h_next"),
        Edge("j_h", "b_h", **LINE), Edge("x", "b_x", **LINE),
        *(Edge(f"b_{a}", f"b_{b}", **LINE)
          for a, b in pairwise(("h", "x", "z", "r", "hn", "n"))),
        Edge("b_z", "z"), Edge("b_r", "r"),
        Edge("z", "j_z", **LINE), Edge("j_z", "keep", ("$z_t$",)),
        Edge("j_z", "flip", ("$z_t$",), at=0.75), Edge("flip", "new"),
        Edge("r", "reset", ("$r_t$",)),
        Edge("b_hn", "reset", ("$W_{hn}h_{t-1}+b_{hn}$",), side="left"),
        Edge("reset", "n"),
        Edge("b_n", "n", ("$W_{xn}x_t+b_{xn}$",)),
        Edge("n", "new", ("$n_t$",)),
        Edge("new", "add", ("$(1-z_t)\\odot n_t$",)),
    )
    inside = tuple(n.id for n in nodes if n.kind != "text")
    return Diagram("gru-cell", (9.0, 4.4), nodes, edges, (Group(inside, T(
        "GRU cell (PyTorch's form)", "GRU 单元（PyTorch 的写法）")),))


def attention() -> Diagram:
    xs, h = (0.8, 1.9, 3.0, 4.1), (0.7, 0.45)
    score = "$e_{t,j}=\\mathbf{v}^\\top\\tanh(W_s\\mathbf{s}_{t-1}+W_h\\mathbf{h}_j)$"
    nodes = (
        *(text(f"x{j}", (at, 0.3), f"$x_{j}$") for j, at in enumerate(xs, 1)),
        *(Node(f"h{j}", (at, 1.3), (f"$\\mathbf{{h}}_{j}$",), role="state", size=h)
          for j, at in enumerate(xs, 1)),
        op("sum", (2.45, 2.75), "Σ", (0.4, 0.4)),
        Node("score", (2.45, 4.0), (T("alignment model", "对齐模型"), score),
             size=(3.1, 0.62)),
        Node("s_prev", (5.3, 4.0), ("$\\mathbf{s}_{t-1}$",), role="state", size=h),
        Node("s", (7.3, 4.0), ("$\\mathbf{s}_t$",), role="state", size=h),
        Node("out", (7.3, 5.1), ("softmax",), role="loss", size=(1.0, 0.42)),
        text("y", (8.75, 5.1), "$y_t$"), text("y_prev", (7.5, 2.9), "$y_{t-1}$"),
    )
    edges = (
        *(Edge(f"x{j}", f"h{j}") for j in range(1, 5)),
        *(Edge(f"h{j}", f"h{j + 1}", head="both") for j in range(1, 4)),
        *(Edge(f"h{j}", "sum", (f"$\\alpha_{{t,{j}}}$",), at=0.45, side="on")
          for j in range(1, 5)),
        Edge("score", "sum", ("softmax",)),
        Edge("s_prev", "score"), Edge("s_prev", "s", ("GRU",)),
        Edge("sum", "s.s-0.2", ("$\\mathbf{c}_t=\\sum_j\\alpha_{t,j}\\mathbf{h}_j$",),
             via=((7.1, 2.75),), at=0.55),
        Edge("y_prev", "s.s+0.2"),
        Edge("s", "out", ("$[\\mathbf{s}_t;\\mathbf{c}_t]$",)), Edge("out", "y"),
    )
    encoder = tuple(f"{k}{j}" for k in "hx" for j in range(1, 5))
    return Diagram("attention-seq2seq", (9.0, 5.5), nodes, edges, (
        Group(encoder, T("encoder: bidirectional GRU", "编码器：双向 GRU"),
              label_at="bottom"),
        Group(("score", "sum"), T("attention", "注意力")),
        Group(("s_prev", "s", "out"), T("decoder", "解码器")),
    ))


def gan() -> Diagram:
    net = (0.85, 0.62)
    fixed, trained = T("fixed", "固定"), T("trained", "训练")
    nodes = (
        text("z1", (0.35, 3.3), "$z$"),
        Node("g1", (1.4, 3.3), ("$G$", fixed), role="fixed", size=net),
        Node("data", (1.4, 2.0), (T("real data", "真实数据"),), role="data",
             size=(1.1, 0.45)),
        Node("d1", (3.3, 2.65), ("$D$", trained), size=net),
        Node("loss1", (3.0, 0.75), ("BCE", T("real → 1, fake → 0", "真 → 1，假 → 0")),
             role="loss", size=(2.0, 0.62)),
        text("z2", (5.25, 3.3), "$z$"),
        Node("g2", (6.3, 3.3), ("$G$", trained), size=net),
        Node("d2", (8.15, 3.3), ("$D$", fixed), role="fixed", size=net),
        Node("loss2", (7.85, 1.6), ("BCE", T("fake → 1", "假 → 1")), role="loss",
             size=(1.3, 0.62)),
        point("a", (4.25, 3.3)), point("b", (4.95, 3.3)),
        point("c", (7.2, 1.08)), point("e", (4.25, 0.75)),
    )
    edges = (
        Edge("z1", "g1"), Edge("g1", "d1", ("$G(z)$",)), Edge("data", "d1", ("$x$",)),
        Edge("d1.s-0.15", "loss1.n+0.15", ("$D(x),\\ D(G(z))$",), side="left"),
        Edge("loss1.n+0.55", "d1.s+0.25", (T("update D", "更新 D"),), side="right",
             **GRAD),
        Edge("z2", "g2"), Edge("g2", "d2", ("$G(z)$",)),
        Edge("d2", "loss2.n+0.3", ("$D(G(z))$",), side="right"),
        Edge("loss2", "g2", (T("gradient through D,", "梯度穿过 D，"),
                             T("update G only", "只更新 G")),
             via=((6.3, 1.6),), side="right", at=0.7, **GRAD),
        Edge("a", "b", (T("then", "然后"),)),
        Edge("c", "e", (T("repeat", "重复"),), via=((7.2, 0.75),)),
    )
    return Diagram("gan-loop", (9.0, 4.2), nodes, edges, (
        Group(("g1", "data", "d1", "loss1"),
              T("1. train D, with G fixed", "1. 训练 D，固定 G")),
        Group(("g2", "d2", "loss2"), T("2. train G, with D fixed", "2. 训练 G，固定 D")),
    ))


def inception() -> Diagram:
    row1, row2, size = 2.75, 1.6, (1.75, 0.55)
    reduction = T("reduction", "降维")

    def conv(k, n):
        return T(f"{k}×{k} conv, {n}", f"{k}×{k} 卷积，{n}")

    nodes = (
        Node("in", (4.4, 3.95), (T("previous layer", "上一层"),
                                 "$192\\times28\\times28$"),
             role="data", size=(1.9, 0.6)),
        Node("b1", (1.1, row1), (conv(1, 64),), size=size),
        Node("b2r", (3.3, row1), (conv(1, 96), reduction), role="gate", size=size),
        Node("b3r", (5.5, row1), (conv(1, 16), reduction), role="gate", size=size),
        Node("b4p", (7.7, row1), (T("3×3 max pool", "3×3 最大池化"),
                                  T("stride 1", "步幅 1")), role="memory", size=size),
        Node("b2", (3.3, row2), (conv(3, 128),), size=size),
        Node("b3", (5.5, row2), (conv(5, 32),), size=size),
        Node("b4", (7.7, row2), (conv(1, 32),), size=size),
        Node("cat", (4.4, 0.4), (T("concatenate the channels", "按通道拼接"),
                                 "$64+128+32+32=256$"), role="data", size=(2.6, 0.6)),
    )
    edges = (
        *(Edge("in", b) for b in ("b1", "b2r", "b3r", "b4p")),
        Edge("b2r", "b2"), Edge("b3r", "b3"), Edge("b4p", "b4"),
        Edge("b1", "cat", via=((1.1, 0.4),)), Edge("b2", "cat"), Edge("b3", "cat"),
        Edge("b4", "cat", via=((7.7, 0.4),)),
    )
    return Diagram("inception", (8.8, 4.4), nodes, edges)


def residual() -> Diagram:
    size, output = (2.3, 0.5), "$y=\\mathrm{ReLU}(F(x)+x)$"
    nodes = (
        text("x", (1.8, 5.1), "$x$"), dot("j", (1.8, 4.65)),
        Node("c1", (1.8, 3.8), (T("3×3 conv, BN, ReLU", "3×3 卷积，BN，ReLU"),),
             size=size),
        Node("c2", (1.8, 2.75), (T("3×3 conv, BN", "3×3 卷积，BN"),), size=size),
        op("add", (1.8, 1.75), "+"),
        Node("relu", (1.8, 1.05), ("ReLU",), size=(0.9, 0.4)),
        text("y", (1.8, 0.15), "$y$", size=(0.3, 0.2)),
    )
    edges = (
        Edge("x", "j", **LINE), Edge("j", "c1"), Edge("c1", "c2"),
        Edge("c2", "add", ("$F(x)$",)),
        Edge("j", "add", (T("identity shortcut", "恒等捷径"), "$x$"),
             via=((3.6, 4.65), (3.6, 1.75))),
        Edge("add", "relu"), Edge("relu", "y", (output,)),
    )
    return Diagram("residual-block", (5.0, 5.35), nodes, edges,
                   (Group(("c1", "c2"), T("residual branch F", "残差分支 F")),))


def dqn() -> Diagram:
    size = (1.7, 0.65)
    target = "$y=r+\\gamma(1-d)\\,\\max_{a'}\\,Q_{\\theta^-}(s',a')$"
    nodes = (
        Node("env", (1.2, 3.6), (T("environment", "环境"), "CartPole"), role="data",
             size=size),
        Node("q", (5.0, 3.6), (T("Q-network", "Q 网络"), "$Q_\\theta$"), size=size),
        Node("buf", (1.2, 1.4), (T("replay buffer", "经验回放缓冲区"),
                                 "$\\mathcal{D}$"), role="memory", size=(1.9, 0.65)),
        Node("loss", (5.0, 1.4), (T("Huber loss", "Huber 损失"),
                                  "$\\ell(y-Q_\\theta(s,a))$"), role="loss", size=size),
        Node("tgt", (7.9, 2.5), (T("target network", "目标网络"), target),
             role="fixed", size=(2.9, 0.7)),
    )
    edges = (
        Edge("env.e+0.15", "q.w+0.15", (T("state", "状态"), "$s$")),
        Edge("q.w-0.15", "env.e-0.15", (T("ε-greedy action", "ε-贪心动作"), "$a$"),
             side="below"),
        Edge("env", "buf", (T("store", "存入"), "$(s,a,r,s',d)$"), side="right"),
        Edge("buf", "loss", (T("random minibatch", "随机小批量"),)),
        Edge("q.s-0.3", "loss.n-0.3", ("$Q_\\theta(s,a)$",), side="left"),
        Edge("loss.n+0.3", "q.s+0.3", (T("gradient", "梯度"), T("step on θ", "更新 θ")),
             side="right", **GRAD),
        Edge("q", "tgt", (T("copy θ → θ⁻ every C steps", "每 C 步复制 θ → θ⁻"),),
             via=((7.9, 3.6),), style=":", tone="copy", at=0.35),
        Edge("tgt", "loss", ("$y$",), via=((7.9, 1.4),), at=0.7),
        Edge("buf", "tgt.s+0.9", ("$s',\\ r,\\ d$",), at=0.55,
             via=((1.2, 0.35), (8.8, 0.35))),
    )
    return Diagram("dqn-loop", (9.4, 4.3), nodes, edges)


DIAGRAMS = {d.name: d for d in (
    backprop(), rnn(), lstm(), gru(), attention(), gan(), inception(), residual(),
    dqn())}
