"""Reinforcement learning (docs/*/rl/): returns, Q-learning, SARSA, REINFORCE, DQN."""
