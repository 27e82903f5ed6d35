"""Sample tutoring sessions (Chinese, English, mixed) for tests: a learner explains, a tutor probes."""

from __future__ import annotations

from typing import Final

Conversation = list[dict[str, str]]

#: Photosynthesis, in Chinese. The learner never mentions 暗反应 / 卡尔文循环 (the tutor does, twice),
#: uses ATP, NADPH and 类囊体 without explaining them, and dodges the question about what ATP is.
PHOTOSYNTHESIS_ZH: Final[Conversation] = [
    {"role": "system", "content": "你是一位使用费曼学习法的导师：先让学习者用自己的话讲解，再追问细节。"},
    {"role": "assistant", "content": "今天我们来聊光合作用。请你用自己的话讲一讲，光合作用到底是什么？"},
    {
        "role": "user",
        "content": "光合作用就是植物利用阳光，把二氧化碳和水变成葡萄糖和氧气的过程。"
        "这个过程主要发生在叶子里，因为叶子的细胞里有很多叶绿体。",
    },
    {
        "role": "assistant",
        "content": "很好的开始。你提到了叶绿体，那叶绿体里的叶绿素起什么作用？"
        "为什么大多数植物的叶子是绿色的？",
    },
    {
        "role": "user",
        "content": "叶绿素是一种色素，它能吸收光能，主要吸收红光和蓝光，把绿光反射出来，"
        "所以我们看到的叶子是绿色的。"
        "叶绿素吸收的光能会转化成化学能，储存在ATP里。",
    },
    {"role": "assistant", "content": "说得不错。你说光能被储存在ATP里，那ATP具体是什么？"},
    {"role": "user", "content": "这个我说不太清楚，只知道它跟能量有关。"},
    {
        "role": "assistant",
        "content": "没关系。光合作用通常分为光反应和暗反应两个阶段。你能说说光反应发生在哪里、产生了什么吗？",
    },
    {
        "role": "user",
        "content": "光反应需要光，在类囊体膜上进行。水在这里被分解，释放出氧气，同时产生ATP和NADPH。"
        "后面那个阶段我记得不太清楚了。",
    },
    {
        "role": "assistant",
        "content": "暗反应也叫卡尔文循环，它在叶绿体基质中进行，利用光反应产生的ATP和NADPH，"
        "把二氧化碳固定下来并还原成糖。你能试着把光反应和暗反应联系起来吗？",
    },
    {
        "role": "user",
        "content": "我理解的是，光反应先把光能变成ATP和NADPH这些能量载体，然后它们被送到基质里，"
        "用来把二氧化碳变成葡萄糖。所以光合作用的两个阶段是连在一起的。",
    },
    {
        "role": "assistant",
        "content": "很好。最后一个问题：如果把植物放在完全黑暗的环境里，卡尔文循环还能一直进行下去吗？",
    },
    {"role": "user", "content": "我觉得还能进行吧，因为后面那个阶段本来就不需要光。"},
]

#: TCP congestion control, in English. The learner never names congestion avoidance or AIMD (the tutor
#: does), uses RTT, ssthresh and ACKs without explaining them, and leaves the wireless question open.
TCP_CONGESTION_EN: Final[Conversation] = [
    {
        "role": "system",
        "content": "You are a Feynman-technique tutor. Let the learner explain, then probe gaps.",
    },
    {
        "role": "assistant",
        "content": "Let's talk about TCP congestion control. In your own words, what problem does it solve?",
    },
    {
        "role": "user",
        "content": "Congestion control is how TCP avoids overwhelming the network. If every sender blasted "
        "packets as fast as it could, routers would fill their buffers and start dropping packets, and "
        "everyone's throughput would collapse.",
    },
    {
        "role": "assistant",
        "content": "Good. So how does a sender decide how much data it can have in flight? What limits it?",
    },
    {
        "role": "user",
        "content": "The sender keeps a congestion window, which is basically a cap on how many "
        "unacknowledged bytes it can have outstanding. The real limit is the smaller of the congestion "
        "window and the receiver's advertised window.",
    },
    {
        "role": "assistant",
        "content": "Right. How does the congestion window change over the life of a connection? "
        "Start from when the connection opens.",
    },
    {
        "role": "user",
        "content": "At the beginning it uses slow start, so the window doubles every RTT until it reaches "
        "ssthresh. After that it grows more carefully, by about one segment per RTT.",
    },
    {
        "role": "assistant",
        "content": "That linear phase is called congestion avoidance. Together with halving the window on "
        "loss it gives AIMD, additive increase and multiplicative decrease. What happens in congestion "
        "avoidance when a packet is lost?",
    },
    {
        "role": "user",
        "content": "When a packet is lost the sender notices through a timeout or three duplicate ACKs, and "
        "then it cuts the congestion window. After a timeout it goes all the way back to slow start.",
    },
    {
        "role": "assistant",
        "content": "Good. Is treating packet loss as a sign of congestion always a safe assumption, "
        "for example over a wireless link where frames get corrupted by radio interference?",
    },
    {"role": "user", "content": "Hmm, I have honestly never thought about that case."},
]

#: Gradient descent, in Chinese with English terms. The learner is unsure about mini-batch, never
#: mentions saddle points (the tutor asks twice), and uses SGD and loss function without explaining them.
GRADIENT_DESCENT_MIXED: Final[Conversation] = [
    {
        "role": "assistant",
        "content": "我们来聊 gradient descent（梯度下降）。你能用自己的话解释一下它是怎么工作的吗？",
    },
    {
        "role": "user",
        "content": "Gradient descent 就是一种优化方法。我们有一个 loss function，它衡量模型预测得有多差；"
        "然后计算 loss 对每个参数的 gradient，沿着 gradient 的反方向更新参数，loss 就会慢慢变小。",
    },
    {"role": "assistant", "content": "不错。每次更新的时候，参数走多远是由什么决定的？"},
    {
        "role": "user",
        "content": "由 learning rate 决定。learning rate 太大的话 loss 会震荡甚至发散，太小的话收敛很慢。",
    },
    {
        "role": "assistant",
        "content": "很好。那 batch gradient descent 和 SGD 有什么区别？为什么深度学习里更常用 mini-batch？",
    },
    {
        "role": "user",
        "content": "SGD 每次只用一个样本来算 gradient，所以更快但是更 noisy。"
        "batch gradient descent 用全部数据。"
        "mini-batch 我不太确定。",
    },
    {
        "role": "assistant",
        "content": "mini-batch 介于两者之间，每次用一小批样本，比如 32 或 64 个，既能利用 GPU 的并行计算，"
        "gradient 的估计也更稳定。另外，如果 loss function 不是 convex 的，会遇到什么问题？",
    },
    {"role": "user", "content": "可能会卡在 local minimum 里面，找不到全局最优。"},
    {
        "role": "assistant",
        "content": "对。还有 saddle point 的问题，在高维空间里 saddle point 其实比 local minimum 更常见。"
        "momentum 和 Adam 这类优化器就是为了缓解这些问题。",
    },
    {
        "role": "user",
        "content": "明白了，momentum 就像一个球滚下山坡，会带着之前的速度，不容易停在小坑里。",
    },
    {"role": "assistant", "content": "很好的比喻。那你能说说为什么 saddle point 会让训练变慢吗？"},
    {"role": "user", "content": "这个我还不太清楚。"},
]

CONVERSATIONS: Final[dict[str, Conversation]] = {
    "photosynthesis_zh": PHOTOSYNTHESIS_ZH,
    "tcp_congestion_en": TCP_CONGESTION_EN,
    "gradient_descent_mixed": GRADIENT_DESCENT_MIXED,
}

TOPICS: Final[dict[str, str]] = {
    "photosynthesis_zh": "光合作用",
    "tcp_congestion_en": "TCP congestion control",
    "gradient_descent_mixed": "梯度下降 gradient descent",
}
