"""The parts the few-shot learners are composed from: config, networks, the task problem, SGD on
the support set."""
