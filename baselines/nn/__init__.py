"""Torch building blocks shared by the deep models (Transformer blocks, embeddings, folding)."""

from baselines.nn.transformer import (
    FiLM,
    MultiHeadSelfAttention,
    SinusoidalMLP,
    TokenConv1d,
    TransformerBlock,
    fold,
    sinusoidal_embedding,
    unfold,
)

__all__ = [
    "FiLM",
    "MultiHeadSelfAttention",
    "SinusoidalMLP",
    "TokenConv1d",
    "TransformerBlock",
    "fold",
    "sinusoidal_embedding",
    "unfold",
]
