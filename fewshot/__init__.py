"""Supervised few-shot meta-learning (issue 19), the half of meta-learning the RL agents grew out
of: task distributions (`metarl.fewshot.data`: sinusoid regression, N-way K-shot classification on
scikit-learn's shipped digits or on a local image folder such as Omniglot or mini-ImageNet) and the
classic learners, one file each: MAML / FO-MAML / Meta-SGD (`maml`), Reptile, Prototypical
Networks, Matching Networks, the LSTM meta-learner, and the non-meta baselines.

The learners satisfy the trainer's `Agent` protocol, so `metarl train maml --env sinusoid`,
`metarl evaluate`, `metarl plot` and `--resume` work on them as on the RL agents; their gradient
step is the backend's (`metarl.backend.adaptation`), the one the MAML family's inner loop takes.
"""
